"""The Flows pane: every received 5-tuple with its rate, drops, the bytes its reader copied and
their wait, and the reading process. `s` changes the sort column; Enter opens the flow's path."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.events import MouseScrollDown, MouseScrollUp, Resize
from textual.widgets import DataTable, Static

from netscope.model.flows import FLOW_SORTS, FlowRow, FlowsView
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns
from netscope.ui.pane import Pane
from netscope.ui.widgets import (
    Column,
    FitsWidth,
    estimated,
    fit_columns,
    header_sort,
    set_columns,
    show_text,
    slow_style,
)

FlowCell = tuple[FlowRow, float]  # a flow and the interval (s) its counts cover
FLOW_LABEL = ("flow", 46)
# `keep`: the lower, the longer a column stays as the terminal narrows.
FLOW_COLUMNS: tuple[Column[FlowCell], ...] = (
    Column("netns", 12, 3, lambda c: c[0].netns or "host", "the flow's network namespace", numeric=False),
    Column(
        "pkt/s",
        8,
        1,
        lambda c: estimated(fmt_count(c[0].rx_pps), c[0].sample_rate),
        "packets received per second (~: from 1 in N packets)",
    ),
    Column(
        "B/s",
        9,
        2,
        lambda c: estimated(fmt_bytes(c[0].rx_bps), c[0].sample_rate),
        "bytes received per second",
    ),
    Column(
        "drop/s",
        7,
        1,
        lambda c: fmt_count(c[0].drops / c[1]),
        "the flow's packets dropped per second (any reason)",
        style=lambda c: "red" if c[0].drops else "",
    ),
    Column(
        "retr/s",
        6,
        2,
        lambda c: fmt_count(c[0].tcp.retransmits / c[1]) if c[0].tcp else NO_DATA,
        "TCP: segments sent again on the connection per second (its ends on this box)",
        style=lambda c: "red" if c[0].tcp and c[0].tcp.retransmits else "",
    ),
    Column(
        "srtt",
        7,
        3,
        lambda c: fmt_ns(c[0].tcp.srtt_us * 1000.0) if c[0].tcp and c[0].tcp.srtt_us else NO_DATA,
        "TCP: the smoothed round-trip time its sender measured (from sampled segments)",
    ),
    Column(
        "copied B/s",
        10,
        3,
        lambda c: fmt_bytes(c[0].copied_bytes / c[1]) if c[0].copied_bytes is not None else NO_DATA,
        "bytes its reader copied out of the socket per second",
    ),
    Column(
        "copy p50",
        8,
        2,
        lambda c: estimated(fmt_ns(c[0].copy_p50_ns), c[0].copy_rate),
        "median wait of its data on the socket",
    ),
    Column(
        "copy p99",
        8,
        1,
        lambda c: estimated(fmt_ns(c[0].copy_p99_ns), c[0].copy_rate),
        "99th percentile wait on the socket",
        style=lambda c: slow_style(c[0].copy_p99_ns),
    ),
    Column(
        "reader",
        16,
        2,
        lambda c: f"{c[0].pid} {c[0].comm}" if c[0].pid is not None else NO_DATA,
        "the process reading its socket",
        numeric=False,
    ),
    Column(
        "CPUs",
        6,
        3,
        lambda c: ",".join(str(n) for n in c[0].flow.cpus) or NO_DATA,
        "CPUs it was received on",
        numeric=False,
    ),
    Column(
        "queues",
        6,
        3,
        lambda c: ",".join("?" if q < 0 else str(q) for q in c[0].flow.queues) or NO_DATA,
        "RX queues it arrived on (? = the device records none)",
        numeric=False,
    ),
)
HEADER_SORTS = {
    "pkt/s": "packets",
    "drop/s": "drops",
    "copy p99": "copy p99",
    "B/s": "bytes",
    "flow": "flow",
    "retr/s": "retransmits",
}


class FlowChosen(Drill):
    """Enter on a flow, anywhere: open its screen; `trail` is where the user came from."""

    def __init__(self, row: FlowRow, trail: str) -> None:
        super().__init__()
        self.row = row
        self.trail = trail

    def screen(self, shown: ViewModel) -> DrillScreen:
        from netscope.ui.flow_screen import FlowScreen

        return FlowScreen(self.row, self.trail, shown)


class FlowList(FitsWidth, DataTable[str | Text]):
    """A table of flows that opens the chosen one: in the Flows pane and in every drill-down.

    Only the rows in sight are in the table: a window over `rows_shown` that the cursor keys and
    the mouse wheel move. Adding, measuring and drawing all 500 rows each second was the pane's
    dearest work at 100k flows; the window costs what the screen shows."""

    WINDOW_BEFORE_LAYOUT = 40  # rows, until the table knows its height
    WHEEL_ROWS = 3

    def __init__(self, table_id: str, trail: str) -> None:
        super().__init__(id=table_id, cursor_type="row", zebra_stripes=True)
        self.trail = trail
        self.rows_shown: tuple[FlowRow, ...] = ()
        self._interval_s = 1.0
        self._columns: tuple[Column[FlowCell], ...] = ()
        self._top = 0  # the index in rows_shown of the window's first row
        self._height = 0
        self._cells: list[tuple[str | Text, ...]] = []  # what the table holds, row by row

    @property
    def cursor_index(self) -> int:
        """The row of `rows_shown` under the cursor."""
        return self._top + self.cursor_row

    def _window(self) -> int:
        rows = self.size.height - (self.header_height if self.show_header else 0)
        return rows if rows > 0 else self.WINDOW_BEFORE_LAYOUT

    def refit(self) -> None:
        self.show(self.rows_shown, self._interval_s)

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        if self.size.height and self.size.height != self._height:
            self._height = self.size.height
            self._fill(self.cursor_index)

    def show(self, rows: tuple[FlowRow, ...], interval_s: float) -> None:
        cursor = self.cursor_index
        self.rows_shown, self._interval_s = rows, interval_s
        width = self.fitted_width(160)
        columns = fit_columns(FLOW_COLUMNS, width, reserved=FLOW_LABEL[1] + 4)
        if columns != self._columns:
            set_columns(self, FLOW_LABEL, columns)  # (and no rows)
            self._columns = columns
        self._fill(cursor)

    def _fill(self, cursor: int, top: int | None = None) -> None:
        """The window that holds row `cursor` (starting at `top` when it can), the cursor on it."""
        count, window = len(self.rows_shown), self._window()
        cursor = max(0, min(cursor, count - 1))
        top = self._top if top is None else top
        top = max(cursor - window + 1, min(top, cursor))
        self._top = top = max(0, min(top, count - window))
        rows: list[tuple[str | Text, ...]] = [
            (r.label, *(c.cell((r, self._interval_s)) for c in self._columns))
            for r in self.rows_shown[top : top + window]
        ]
        if self.row_count == len(rows) and len(self.columns) == len(rows[0] if rows else ()):
            # The same rows in sight: only the cells that changed are updated, in place.
            for y, (old, new) in enumerate(zip(self._cells, rows, strict=True)):
                for x, (was, now) in enumerate(zip(old, new, strict=True)):
                    if was != now:
                        self.update_cell_at(Coordinate(y, x), now)
        else:
            self.clear()
            for cells in rows:
                self.add_row(*cells)
        self._cells = rows
        if self.row_count:
            self.move_cursor(row=cursor - top, animate=False)

    def action_cursor_down(self) -> None:
        if self.cursor_row < self.row_count - 1:
            super().action_cursor_down()
        else:
            self._fill(self.cursor_index + 1)

    def action_cursor_up(self) -> None:
        if self.cursor_row > 0:
            super().action_cursor_up()
        else:
            self._fill(self.cursor_index - 1)

    def action_page_down(self) -> None:
        window = self._window()
        self._fill(self.cursor_index + window, self._top + window)

    def action_page_up(self) -> None:
        window = self._window()
        self._fill(self.cursor_index - window, self._top - window)

    def action_scroll_top(self) -> None:
        self._fill(0, 0)

    def action_scroll_bottom(self) -> None:
        self._fill(len(self.rows_shown) - 1)

    # A table of rows: Home and End go to the first and the last flow, as ctrl+Home and ctrl+End.
    action_scroll_home = action_scroll_top
    action_scroll_end = action_scroll_bottom

    def _on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        event.prevent_default()
        event.stop()
        self._fill(self.cursor_index + self.WHEEL_ROWS, self._top + self.WHEEL_ROWS)

    def _on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        event.prevent_default()
        event.stop()
        self._fill(self.cursor_index - self.WHEEL_ROWS, self._top - self.WHEEL_ROWS)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        index = self._top + event.cursor_row
        if 0 <= index < len(self.rows_shown):
            self.post_message(FlowChosen(self.rows_shown[index], self.trail))


class FlowsPane(Pane, Vertical):
    SPEC = BY_ID["flows"]
    BINDINGS = [Binding("s", "sort", "Sort")]

    def __init__(self) -> None:
        super().__init__(id="flows-pane")
        self.border_title = "Flows"
        self._sort = 0
        self._view: FlowsView | None = None

    @property
    def rows(self) -> tuple[FlowRow, ...]:
        return self.query_one(FlowList).rows_shown

    def compose(self) -> ComposeResult:
        yield Static(id="flows-probes")
        yield Static("waiting for the flows probe", id="flows-summary")
        yield FlowList("flows-table", "machine › flows")

    def action_sort(self) -> None:
        self._sort = (self._sort + 1) % len(FLOW_SORTS)
        if self._view is not None:
            self.show_view(self._view)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it, where it is a sort key."""
        index = header_sort(event, HEADER_SORTS, FLOW_SORTS)
        if index is not None:
            self._sort = index
            if self._view is not None:
                self.show_view(self._view)

    def show(self, shown: ViewModel) -> None:
        if shown.flows is not None:
            self.show_view(shown.flows)

    def show_view(self, view: FlowsView) -> None:
        self._view = view
        label = list(FLOW_SORTS)[self._sort]
        summary = Text()
        others, dt = view.others, view.interval_s
        # Sampled, a flow whose packets were all skipped is not seen: the count is a lower bound.
        summary.append(f"{estimated(str(view.flow_count), view.sample_rate)} flows", style="bold")
        summary.append(f"  sorted by {label} (s)  filter: {view.filter or 'none'}")
        unheld = view.not_held / dt
        summary.append(f"  not held {fmt_count(unheld)} pkt/s", style="yellow" if view.not_held else "dim")
        if others.flows:
            summary.append(f"\nthe busiest {len(view.rows)} listed; the {others.flows} others: ")
            summary.append(f"{estimated(fmt_count(others.rx_packets / dt), view.sample_rate)} pkt/s")
            dropped = sum(n for _, n in others.drops)
            summary.append(f", drops {fmt_count(dropped / dt)}/s", style="red" if dropped else "")
        if view.filtered:
            summary.append(f"  left out by the filter {fmt_count(view.filtered / dt)} pkt/s", style="dim")
        show_text(self.query_one("#flows-summary", Static), summary)
        self.query_one(FlowList).show(view.sorted_by(label), view.interval_s)
