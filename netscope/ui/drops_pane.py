"""The Drops pane: drops per reason (the kernel's names), where they happen, and the live drop log.

Enter on a reason opens its detail screen (locations, devices, protocols, CPUs, its recent events).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.drops import (
    DropsView,
    DropTotals,
    ReasonRow,
    SnmpRow,
    reason_label,
)
from netscope.model.sample import DropEvent
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.drop_reason import DropReasonScreen, drop_log_table, event_cells, reason_row
from netscope.ui.format import NO_DATA, fmt_count, fmt_pct, sparkline
from netscope.ui.pane import Pane
from netscope.ui.widgets import (
    Column,
    FitsWidth,
    TrendLine,
    fit_columns,
    set_columns,
    show_text,
)

LOG_ROWS = 50  # drop log rows shown, newest first
TREND = 20
MIN_EXPLANATION = 60

REASON_COLUMNS: tuple[Column[ReasonRow], ...] = (
    Column("drops/s", 8, 1, lambda r: fmt_count(r.per_s), "drops with this reason per second"),
    Column("share%", 6, 1, lambda r: fmt_pct(r.share_pct), "its share of all drops"),
    Column(
        "top location",
        28,
        1,
        lambda r: r.locations[0].key if r.locations else NO_DATA,
        "the kernel function that dropped most of them (function+offset, from /proc/kallsyms)",
        numeric=False,
    ),
    Column(
        "top device",
        20,
        2,
        lambda r: r.devices[0].key if r.devices else NO_DATA,
        "the device most of them came in on (or left by), @namespace when not the host's",
        numeric=False,
    ),
)


def drops_summary(totals: DropTotals, view: DropsView | None) -> Text:
    """'1,234,567 drops since start · 2.5k/s now · 1,000 logged/s (limit 1,000/s) · 0 lost'."""
    text = Text()
    text.append(f"{totals.drops:,} drops since start", style="bold")
    if view is not None:
        text.append(f" · {fmt_count(view.total_per_s)}/s now")
        text.append(f" · {fmt_count(view.logged / view.interval_s)} logged/s (limit {view.log_rate:,}/s)")
    text.append(f" · {totals.suppressed:,} not logged (over the limit)")
    text.append(f" · {totals.lost:,} lost", style="bold red" if totals.lost else "")
    if view is not None and view.unbucketed:
        text.append(f" · {view.unbucketed:,} without breakdown (map full)", style="yellow")
    return text


def snmp_line(rows: Sequence[SnmpRow], read: bool) -> Text:
    """The kernel's own loss counters, beside (or, without BPF, instead of) the drop reasons:
    'Kernel counters (/proc/net/snmp, this namespace): Udp NoPorts 240k/s (14,394,845 since start)'."""
    text = Text("Kernel counters", style="bold")
    text.append(" (/proc/net/snmp, netstat, snmp6; this network namespace): ")
    if not read:
        text.append("not read (a recording made before netscope read them)", style="dim")
    elif not rows:
        text.append("no loss counted since start")
    for i, row in enumerate(rows):
        text.append(" · " if i else "")
        text.append(row.counter, style="bold" if row.per_s else "")
        text.append(f" {fmt_count(row.per_s)}/s ({row.total:,} since start)")
    return text


class ReasonSelected(Drill):
    def __init__(self, reason: int) -> None:
        super().__init__()
        self.reason = reason

    def screen(self, shown: ViewModel) -> DrillScreen:
        """The reason's screen, titled with its name as the table or a logged drop has it."""
        view = shown.drops
        row = reason_row(view, self.reason) if view is not None else None
        event = next((e for e in shown.drop_events if e.reason == self.reason), None)
        label = row.label if row else reason_label(event.subsystem, event.name) if event else str(self.reason)
        return DropReasonScreen(self.reason, label, shown)


class DropsPane(Pane, FitsWidth, Vertical):
    """Enter on a reason, or on a logged drop, opens that reason's detail screen."""

    SPEC = BY_ID["drops"]

    def __init__(self) -> None:
        super().__init__(id="drops-pane")
        self.border_title = "Drops"
        self._events: list[DropEvent] = []
        self._shown: ViewModel | None = None
        self._layout_shown: tuple[tuple[Column[ReasonRow], ...], int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="drops-probes")
        yield Static("waiting for the drops probe", id="drops-summary")
        yield Static(id="drops-snmp")
        yield TrendLine("drops/s, every reason", lambda v: f"{fmt_count(v)}/s", id="drops-trend")
        yield DataTable(id="drops-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="drops-selected")
        yield Static(
            Text("Drop log (newest first; rate-limited in the kernel)", style="bold"), id="drop-log-title"
        )
        yield drop_log_table("drop-log")

    def show(self, shown: ViewModel) -> None:
        """Render the newest view, its trend and the log (newest first)."""
        self._shown = shown
        view = shown.drops
        summary = (
            drops_summary(shown.drop_totals, view)
            if shown.drops_history
            else Text("No drop reasons counted: the drops probe has not been live for an interval.")
        )
        show_text(self.query_one("#drops-summary", Static), summary)
        self.query_one("#drops-trend", TrendLine).show([v.total_per_s for v in shown.drops_history])
        show_text(self.query_one("#drops-snmp", Static), snmp_line(shown.snmp, bool(shown.latest.snmp)))
        if view is not None:
            self._show_reasons(view, shown.drops_history)
        self._show_log(shown)

    def refit(self) -> None:
        if self._shown is not None:
            self.show(self._shown)

    def _layout(self, table: DataTable[str | Text]) -> tuple[tuple[Column[ReasonRow], ...], int, int]:
        """Columns that fit, the trend's width (0: none) and the explanation's (0: none)."""
        width = self.fitted_width(160)
        reserved = 24 + 2
        columns = fit_columns(REASON_COLUMNS, width, reserved)
        spare = width - reserved - sum(c.width + 2 for c in columns) - 4
        trend = TREND if spare >= TREND + 2 else 0
        explanation = spare - (trend + 2 if trend else 0) - 2
        layout = (columns, trend, explanation if explanation >= MIN_EXPLANATION else 0)
        if layout != self._layout_shown:
            extra = [(f"last {trend} intervals", trend)] if trend else []
            if layout[2]:
                extra.append(("what it means, what to check", layout[2]))
            set_columns(table, ("reason", 24), columns, extra)
            self._layout_shown = layout
        return layout

    def _show_reasons(self, view: DropsView, history: Sequence[DropsView]) -> None:
        table: DataTable[str | Text] = self.query_one("#drops-table", DataTable)
        selected = self.selected_reason()
        columns, trend, explanation = self._layout(table)
        table.clear()
        for row in view.rows:
            cells: list[str | Text] = [Text(row.label, style="bold")]
            cells += [c.cell(row) for c in columns]
            if trend:
                series = [next((r.per_s for r in v.rows if r.reason == row.reason), 0.0) for v in history]
                cells.append(Text(sparkline(series, trend), style="red"))
            if explanation:
                cells.append(row.explanation or NO_DATA)
            table.add_row(*cells, key=str(row.reason))
        if selected is not None and str(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)
        self._show_selected()

    def _show_log(self, shown: ViewModel) -> None:
        table: DataTable[str | Text] = self.query_one("#drop-log", DataTable)
        cursor = table.cursor_row
        table.clear()
        self._events = list(shown.drop_events[:LOG_ROWS])
        for e in self._events:
            table.add_row(*event_cells(e, shown))
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

    def selected_reason(self) -> int | None:
        table: DataTable[str | Text] = self.query_one("#drops-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "drops-table":
            self._show_selected()

    def _show_selected(self) -> None:
        """The highlighted reason's meaning, in full, under the table."""
        reason = self.selected_reason()
        view = self._shown.drops if self._shown else None
        row = reason_row(view, reason) if view is not None and reason is not None else None
        text = Text()
        if row is not None:
            text.append(f"▸ {row.label}", style="bold")
            text.append(f": {row.explanation or 'no explanation for this reason yet'}")
            text.append("  (Enter: where, on which devices, its drops)", style="dim")
        self.query_one("#drops-selected", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "drops-table":
            reason = self.selected_reason()
        else:
            row = event.cursor_row
            reason = self._events[row].reason if 0 <= row < len(self._events) else None
        if reason is not None:
            self.post_message(ReasonSelected(reason))
