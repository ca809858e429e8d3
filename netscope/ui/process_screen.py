"""One process's sockets with their copy-latency percentiles, and its flows, live (Enter on a
process in the Latency pane). Its socket columns are the Latency pane's too."""

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
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns
from netscope.ui.key_bar import KeyBar
from netscope.ui.widgets import Column, estimated, fit_columns, marked, set_columns, slow_style

SOCKET_LABEL = ("socket (local ← peer)", 42)
# `keep`: the lower, the longer a column stays as the terminal narrows.
SOCKET_COLUMNS: tuple[Column[SocketRow], ...] = (
    Column("reads", 8, 2, lambda s: marked(f"{s.reads:,}", s.reads_estimated), "reads in the interval"),
    Column(
        "bytes",
        8,
        3,
        lambda s: marked(fmt_bytes(s.stats.bytes), s.reads_estimated),
        "bytes those reads copied",
    ),
    Column(
        "p50", 9, 2, lambda s: estimated(fmt_ns(s.stats.p50_ns), s.sample_rate), "median wait on the socket"
    ),
    Column("p90", 9, 3, lambda s: estimated(fmt_ns(s.stats.p90_ns), s.sample_rate), "90th percentile wait"),
    Column(
        "p99",
        9,
        1,
        lambda s: estimated(fmt_ns(s.stats.p99_ns), s.sample_rate),
        "99th percentile wait (~: of the reads whose data's arrival was sampled)",
        style=lambda s: slow_style(s.stats.p99_ns),
    ),
    Column(
        "rcvbuf",
        7,
        3,
        lambda s: fmt_bytes(s.rcvbuf) if s.rcvbuf is not None else NO_DATA,
        "its receive buffer at the last read (sk_rcvbuf: SO_RCVBUF as the kernel keeps it, doubled)",
    ),
)


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
        # Its container or unit, and the drops at its sockets (the Processes pane's row).
        own = next((r for r in shown.processes.rows if r.pid == self.pid), None) if shown.processes else None
        if own is not None:
            if own.group:
                title.append(f"\nin {own.where}", style="cyan" if own.container else "")
            if own.rx_packets_per_s:
                queued = marked(fmt_count(own.rx_packets_per_s), own.estimated)
                title.append(f"\nqueued on its sockets {queued} pkts/s")
            if own.tx_bytes_per_s:
                title.append(f"\nsent {marked(fmt_bytes(own.tx_bytes_per_s), own.tx_estimated)}/s")
            if own.drops:
                dt = shown.latest.interval_s or 1.0
                named = "  ".join(f"{name} {fmt_count(n / dt)}/s" for name, n in own.drops)
                title.append(f"\ndropped at its sockets: {named}", style="red")
        self.query_one("#process-title", Static).update(title)
        if shown.flows is not None:
            self.query_one(FlowList).show(flows_where(shown.flows, pid=self.pid), shown.flows.interval_s)
