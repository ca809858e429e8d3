"""The Latency pane: how long received data waited on its socket before each process copied it.

Enter on a process shows its sockets; Esc goes back. A slow reader's p99 is coloured.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.latency import LatencyView, Percentiles, ProcessRow
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns, histogram_bar
from netscope.ui.pane import Pane
from netscope.ui.process_screen import ProcessScreen
from netscope.ui.widgets import (
    TrendLine,
    cursor_key,
    estimated,
    fixed_table,
    marked,
    show_text,
    slow_style,
)

PROCESS_COLUMNS = (
    ("pid", 8),
    ("comm", 16),
    ("reads/s", 8),
    ("B/s", 8),
    ("p50", 8),
    ("p90", 8),
    ("p99", 8),
    ("max", 8),
)
EXPLAIN = (
    "wait = from the data being queued on the socket (sock:sk_data_ready) to the read that copied it "
    "(sock:sock_recv_length); TCP is matched by sequence number, UDP datagram by datagram. Reads and "
    "bytes are every read's (~ in a flood: counted while the hooks were on, part of the interval, and "
    "scaled up); the waits (~) are those of the reads that copied data whose arrival was timed, 1 "
    "arrival in N (probes line)."
)


def percentile_cells(p: Percentiles, rate: int) -> tuple[Text, ...]:
    return (
        Text(estimated(fmt_ns(p.p50_ns), rate), justify="right"),
        Text(estimated(fmt_ns(p.p90_ns), rate), justify="right"),
        Text(estimated(fmt_ns(p.p99_ns), rate), justify="right", style=slow_style(p.p99_ns)),
    )


def summary(view: LatencyView) -> Text:
    a = view.all
    rate = view.sample_rate
    text = Text()
    text.append("all readers  ", style="bold")
    text.append(f"{marked(fmt_count(view.reads_per_s), view.reads_estimated)} reads/s  ")
    text.append(f"p50 {estimated(fmt_ns(a.p50_ns), rate)}  p90 {estimated(fmt_ns(a.p90_ns), rate)}  ")
    text.append(f"p99 {estimated(fmt_ns(a.p99_ns), rate)}", style=slow_style(a.p99_ns))
    text.append(f"  max {estimated(fmt_ns(a.max_ns), rate)}")
    text.append(f"  ({a.count:,} reads timed" + (f", 1 arrival in {rate})" if rate > 1 else ")"), style="dim")
    if view.coarsened:
        text.append(f"  thinned {view.coarsened:,}", style="dim")
    if view.evicted:
        text.append(f"  sockets dropped by the full table {view.evicted:,}", style="yellow")
    if view.uncounted:
        text.append(f"  {view.uncounted:,} reads not counted", style="yellow")
    if view.untimed:
        text.append(f"  {view.untimed:,} arrivals untimed", style="dim")
    st = view.stack
    text.append("\nin the stack  ", style="bold")
    if st is None:
        text.append("device → socket: the stack probe is not attached", style="dim")
    else:
        srate = view.stack_rate
        waits = (("p50", st.p50_ns), ("p90", st.p90_ns), ("p99", st.p99_ns))
        text.append("device → socket: " + "  ".join(f"{q} {estimated(fmt_ns(ns), srate)}" for q, ns in waits))
        text.append(
            f"  ({st.count:,} packets followed" + (f", 1 in {srate} timed)" if srate > 1 else ")"),
            style="dim",
        )
        if view.stack_unknown:
            text.append(f"  reached no socket {view.stack_unknown:,}", style="dim")
    text.append("\n1µs ")
    text.append(histogram_bar(view.octaves[:11]), style="cyan")
    text.append(" 1ms ")
    text.append(histogram_bar(view.octaves[10:21]), style="cyan")
    text.append(" 1s ")
    text.append(histogram_bar(view.octaves[20:]), style="cyan")
    return text


class ProcessSelected(Drill):
    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def screen(self, shown: ViewModel) -> DrillScreen:
        return ProcessScreen(self.pid, shown)


class LatencyPane(Pane, Vertical):
    SPEC = BY_ID["latency"]

    def __init__(self) -> None:
        super().__init__(id="latency-pane")
        self.border_title = "Latency"

    def compose(self) -> ComposeResult:
        yield Static(id="latency-probes")
        yield Static("waiting for the latency probe", id="latency-summary")
        yield TrendLine("copy p99, all readers, last intervals", fmt_ns, id="latency-trend")
        yield fixed_table("latency-table", PROCESS_COLUMNS)
        yield Static(Text(EXPLAIN, style="dim"), id="latency-note")

    def show(self, shown: ViewModel) -> None:
        if shown.latency is not None:
            self.show_view(shown.latency)
        p99 = [v.all.p99_ns for v in shown.latency_history]
        self.query_one("#latency-trend", TrendLine).show([ns for ns in p99 if ns is not None])

    def show_view(self, view: LatencyView) -> None:
        show_text(self.query_one("#latency-summary", Static), summary(view))
        table: DataTable[str | Text] = self.query_one("#latency-table", DataTable)
        selected = self.selected_pid()
        table.clear()
        for p in view.processes:
            table.add_row(*process_cells(p, view.sample_rate), key=str(p.pid))
        if selected is not None and str(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)

    def selected_pid(self) -> int | None:
        value = cursor_key(self.query_one("#latency-table", DataTable))
        return int(value) if value else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        pid = self.selected_pid()
        if pid is not None:
            self.post_message(ProcessSelected(pid))


def process_cells(p: ProcessRow, rate: int) -> tuple[str | Text, ...]:
    return (
        str(p.pid),
        p.comm,
        Text(marked(fmt_count(p.reads_per_s), p.reads_estimated), justify="right"),
        Text(marked(fmt_bytes(p.bytes_per_s), p.reads_estimated), justify="right"),
        *percentile_cells(p.stats, rate),
        Text(
            estimated(fmt_ns(p.stats.max_ns), rate) if p.stats.max_ns else NO_DATA,
            justify="right",
            style=slow_style(p.stats.max_ns),
        ),
    )
