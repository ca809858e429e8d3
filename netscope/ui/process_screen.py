"""One process's sockets with their copy-latency percentiles, and its flows, live (Enter on a
process in the Latency pane)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.flows import flows_where
from netscope.model.latency import SocketRow
from netscope.model.timeline import ViewModel
from netscope.ui.drill import DrillScreen
from netscope.ui.flows_pane import FlowList
from netscope.ui.format import fmt_bytes, fmt_count, fmt_ns
from netscope.ui.key_bar import KeyBar
from netscope.ui.latency_pane import SOCKET_COLUMNS, SOCKET_LABEL
from netscope.ui.widgets import Column, fit_columns, set_columns


class ProcessScreen(DrillScreen):
    """One process's sockets and their percentiles, live. Esc: back."""

    PROBES = ("latency", "flows")  # attached while this screen is open

    def __init__(self, pid: int, shown: ViewModel) -> None:
        super().__init__()
        self.pid = pid
        self._initial = shown
        self._columns: tuple[Column[SocketRow], ...] = ()

    def compose(self) -> ComposeResult:
        with Vertical(id="process-box"):
            yield Static(id="process-title")
            yield DataTable(id="process-sockets", cursor_type="row", zebra_stripes=True)
            yield Static(Text("Its flows (Enter: the flow)", style="bold"))
            yield FlowList("process-flows", f"machine › latency › pid {self.pid}")
        yield KeyBar()

    def on_mount(self) -> None:
        self.update_view(self._initial)

    def on_resize(self) -> None:
        self.update_view(self._initial)

    def update_view(self, shown: ViewModel) -> None:
        self._initial = shown
        view = shown.latency
        row = next((p for p in view.processes if p.pid == self.pid), None) if view else None
        title = Text()
        table: DataTable[str | Text] = self.query_one("#process-sockets", DataTable)
        columns = fit_columns(SOCKET_COLUMNS, self.size.width or 160, reserved=SOCKET_LABEL[1] + 4)
        if columns != self._columns:
            set_columns(table, SOCKET_LABEL, columns)
            self._columns = columns
        table.clear()
        if row is None:
            title.append(f"pid {self.pid}: no reads in the last interval", style="dim")
        else:
            title.append(f"pid {row.pid} {row.comm}", style="bold")
            title.append(
                f"  {fmt_count(row.reads_per_s)} reads/s  {fmt_bytes(row.bytes_per_s)}/s  "
                f"p50 {fmt_ns(row.stats.p50_ns)}  p99 {fmt_ns(row.stats.p99_ns)}  "
                f"max {fmt_ns(row.stats.max_ns)}"
            )
            for s in row.sockets:
                table.add_row(s.label, *(c.cell(s) for c in columns))
        self.query_one("#process-title", Static).update(title)
        if shown.flows is not None:
            self.query_one(FlowList).show(flows_where(shown.flows, pid=self.pid), shown.flows.interval_s)
