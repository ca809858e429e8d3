"""One drop reason in detail: where in the kernel, on which devices, protocols and CPUs, and its
recent logged drops. Live: the app hands it each new view. Esc goes back. The drop log's table
and a reason's row are here, and the Drops pane takes them from here."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import DataTable, Static

from netscope.model.drops import DropsView, Ranked, ReasonRow, five_tuple, protocol_name, reason_label
from netscope.model.flows import flows_where
from netscope.model.sample import DropEvent
from netscope.model.timeline import ViewModel
from netscope.ui.drill import DrillScreen
from netscope.ui.flows_pane import FlowList
from netscope.ui.format import NO_DATA, fmt_count, fmt_pct
from netscope.ui.key_bar import KeyBar
from netscope.ui.widgets import fixed_table

LOG_COLUMNS = (
    ("time", 12),
    ("reason", 16),
    ("5-tuple", 44),
    ("device", 22),
    ("location", 30),
    ("proto", 5),
    ("CPU", 3),
)


def drop_log_table(table_id: str) -> DataTable[str | Text]:
    return fixed_table(table_id, LOG_COLUMNS)


def event_cells(e: DropEvent, shown: ViewModel) -> tuple[str | Text, ...]:
    when = datetime.fromtimestamp(e.ts)
    reason = reason_label(e.subsystem, e.name)
    return (
        when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}",
        reason,
        five_tuple(e) or NO_DATA,
        shown.device(e.ifname, e.netns),
        e.symbol,
        protocol_name(e.protocol),
        str(e.cpu),
    )


def reason_row(view: DropsView, reason: int) -> ReasonRow | None:
    return next((r for r in view.rows if r.reason == reason), None)


BREAKDOWNS = (
    ("locations", "location (kallsyms)"),
    ("devices", "device"),
    ("protocols", "protocol"),
    ("cpus", "CPU"),
)


class DropReasonScreen(DrillScreen):
    PROBES = ("drops", "flows")  # attached while this screen is open

    def __init__(self, reason: int, label: str, shown: ViewModel) -> None:
        super().__init__()
        self.reason = reason
        self.label = label
        self._initial = shown

    def on_mount(self) -> None:
        self.update_view(self._initial)

    def on_resize(self) -> None:
        self.update_view(self._initial)

    def _columns(self, key: str) -> tuple[int, bool]:
        """(label width, with share%): locations and devices get what their half of the screen
        leaves after the numbers; when that is too little for a symbol, share% gives way."""
        if key not in ("locations", "devices"):
            return 12, True
        half = (self.size.width - 4) // 2  # the box's border, the grid's gutter
        with_share = half - 8 - 6 - 6 >= 24  # drops/s, share%, cell padding
        return max(12, min(32, half - 8 - (6 + 6 if with_share else 4))), with_share

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-box"):
            yield Static(id="reason-title")
            with Grid(id="reason-breakdowns"):
                for key, _ in BREAKDOWNS:
                    yield DataTable(id=f"reason-{key}", cursor_type="row")
            yield Static(Text("Flows dropped with this reason (Enter: the flow)", style="bold"))
            yield FlowList("reason-flows", f"machine › drops › {self.label}")
            yield Static(Text("Recent drops with this reason", style="bold"))
            yield drop_log_table("reason-log")
        yield KeyBar()

    def update_view(self, shown: ViewModel) -> None:
        self._initial = shown
        view = shown.drops
        row = reason_row(view, self.reason) if view is not None else None
        title = Text()
        title.append(self.label, style="bold red")
        if row is None:
            title.append("  no drops with this reason in the last interval", style="dim")
        else:
            title.append(f"  {fmt_count(row.per_s)}/s, {fmt_pct(row.share_pct)}% of all drops")
            if row.explanation:
                title.append(f"\n{row.explanation}")
        self.query_one("#reason-title", Static).update(title)
        for key, _ in BREAKDOWNS:
            table: DataTable[str | Text] = self.query_one(f"#reason-{key}", DataTable)
            width, with_share = self._columns(key)
            if [c.width for c in table.columns.values()] != [width, 8, 6][: 3 if with_share else 2]:
                table.clear(columns=True)
                table.add_column(dict(BREAKDOWNS)[key], width=width)
                table.add_column(Text("drops/s", justify="right"), width=8)
                if with_share:
                    table.add_column(Text("share%", justify="right"), width=6)
            table.clear()
            ranked: tuple[Ranked, ...] = getattr(row, key) if row is not None else ()
            total = sum(r.count for r in ranked) or 1
            for r in ranked[:50]:
                cells = (
                    r.key,
                    Text(fmt_count(r.count / view.interval_s if view else 0), justify="right"),
                    Text(fmt_pct(100.0 * r.count / total), justify="right"),
                )
                table.add_row(*cells[: len(table.columns)])
        if shown.flows is not None:
            self.query_one(FlowList).show(flows_where(shown.flows, reason=self.label), shown.flows.interval_s)
        log: DataTable[str | Text] = self.query_one("#reason-log", DataTable)
        log.clear()
        for e in [e for e in shown.drop_events if e.reason == self.reason][:100]:
            log.add_row(*event_cells(e, shown))
