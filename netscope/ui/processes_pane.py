"""The Processes pane: who receives. One row per process that read from its sockets, with its
container (or systemd unit), network namespace, read rate, copy latency and sockets; `k` sums the
rows per container. Enter on a process shows its sockets (as from the Latency pane)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.processes import PROC_SORTS, ProcessesView, ProcRow, sorted_rows
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns
from netscope.ui.latency_pane import ProcessSelected
from netscope.ui.pane import Pane
from netscope.ui.widgets import (
    Column,
    FitsWidth,
    cursor_key,
    fit_columns,
    header_sort,
    marked,
    set_columns,
    show_text,
    slow_style,
)

ProcCell = tuple[ProcRow, str]  # a process (or a container's processes) and its namespace's name
PROC_LABEL = ("pid", 8)
# `keep`: the lower, the longer a column stays as the terminal narrows (80 columns keep the 1s).
PROC_COLUMNS: tuple[Column[ProcCell], ...] = (
    Column("process", 12, 1, lambda c: c[0].comm, "its name (grouped: its processes')", numeric=False),
    Column(
        "container or unit",
        18,
        1,
        lambda c: c[0].where or NO_DATA,
        "its container (runtime:id, or a pod) from its cgroup v2 path, else its systemd unit",
        numeric=False,
        style=lambda c: "cyan" if c[0].container else "",
    ),
    Column("netns", 9, 3, lambda c: c[1], "its network namespace", numeric=False),
    Column(
        "pkts/s in",
        9,
        1,
        lambda c: marked(fmt_count(c[0].rx_packets_per_s), c[0].estimated),
        "data queued on its sockets, a second (sock:sk_data_ready: UDP datagrams, TCP segments "
        "with new data)",
    ),
    Column(
        "reads/s",
        7,
        3,
        lambda c: marked(fmt_count(c[0].reads_per_s), c[0].estimated),
        "reads that copied data from its sockets, a second",
    ),
    Column(
        "B/s in",
        8,
        1,
        lambda c: marked(fmt_bytes(c[0].bytes_per_s), c[0].estimated),
        "bytes those reads copied, a second",
    ),
    Column(
        "B/s out",
        8,
        1,
        lambda c: marked(fmt_bytes(c[0].tx_bytes_per_s), c[0].tx_estimated),
        "bytes sent through its sockets, a second (sock:sock_send_length)",
    ),
    Column(
        "copy p99",
        8,
        2,
        lambda c: marked(fmt_ns(c[0].p99_ns), c[0].estimated),
        "the wait before its reads copied the data, 99th percentile",
        style=lambda c: slow_style(c[0].p99_ns),
    ),
    Column(
        "drops/s",
        7,
        1,
        lambda c: fmt_count(c[0].drops_per_s),
        "packets dropped at its sockets, a second",
        style=lambda c: "red" if c[0].drops_per_s else "",
    ),
    Column(
        "sockets",
        7,
        3,
        lambda c: NO_DATA if c[0].sockets is None else str(c[0].sockets),
        "its socket file descriptors",
    ),
)
HEADER_SORTS = {
    "B/s in": "bytes",
    "pkts/s in": "packets",
    "drops/s": "drops",
    "copy p99": "copy p99",
    "B/s out": "sent",
    "process": "process",
}
EXPLAIN = (
    "Processes that copied data from their sockets this interval (the copy-latency probe's readers), "
    "sent through them (sock:sock_send_length: B/s out), or had packets dropped at one "
    "(skb:kfree_skb's socket, its process found in /proc): the container from the process's cgroup "
    "v2 path (docker, podman, containerd, CRI-O, Kubernetes pods and their QoS class), else its "
    "systemd unit; sockets are its socket file descriptors. k: per container. s (or a click on a "
    "column's header): sort. Enter: the process's sockets."
)


def netns_label(row: ProcRow, netns_names: dict[int, str], host_netns: int) -> str:
    if not row.netns:
        return NO_DATA
    return "host" if row.netns == host_netns else netns_names.get(row.netns, str(row.netns))


def summary(view: ProcessesView, grouped: bool, order: str) -> Text:
    containers = sum(1 for g in view.groups if g.container)
    others = len(view.groups) - containers
    text = Text()
    text.append(f"{plural(len(view.rows), 'process', 'processes')} read, sent or had drops", style="bold")
    text.append(
        f", in {plural(containers, 'container')} and {plural(others, 'unit or cgroup', 'units or cgroups')}"
    )
    text.append(f"  sorted by {order} (s)")
    text.append("  (per container: k to list processes)" if grouped else "  (k: per container)", style="dim")
    return text


def plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


class ProcessesPane(Pane, FitsWidth, Vertical):
    SPEC = BY_ID["processes"]
    BINDINGS = [Binding("k", "toggle_grouped", "Per container"), Binding("s", "sort", "Sort")]

    def __init__(self) -> None:
        super().__init__(id="processes-pane")
        self.border_title = "Processes"
        self.grouped = False
        self._sort = 0  # PROC_SORTS' index
        self._shown: ViewModel | None = None
        self._columns: tuple[Column[ProcCell], ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="processes-probes")
        yield Static("waiting for the copy-latency probe's first interval", id="processes-summary")
        yield DataTable(id="processes-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text(EXPLAIN, style="dim"), id="processes-note")

    def refit(self) -> None:
        if self._shown is not None:
            self.show(self._shown)

    def show(self, shown: ViewModel) -> None:
        self._shown = shown
        view = shown.processes
        if view is None:
            return
        order = list(PROC_SORTS)[self._sort]
        show_text(self.query_one("#processes-summary", Static), summary(view, self.grouped, order))
        table: DataTable[str | Text] = self.query_one("#processes-table", DataTable)
        columns = fit_columns(PROC_COLUMNS, self.fitted_width(160) - 4, reserved=PROC_LABEL[1] + 2)
        if columns != self._columns:
            set_columns(table, PROC_LABEL, columns)
            self._columns = columns
        selected = cursor_key(table)
        table.clear()
        names = dict(shown.netns_names)
        for row in sorted_rows(view.groups if self.grouped else view.rows, order):
            key = f"g:{row.group}" if self.grouped else str(row.pid) if row.pid else f"s:{row.cgroup}"
            cell = (row, netns_label(row, names, shown.info.netns))
            label = str(row.pid) if row.pid else f"{row.processes} proc" if self.grouped else NO_DATA
            table.add_row(label, *(c.cell(cell) for c in columns), key=key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def action_sort(self) -> None:
        self._sort = (self._sort + 1) % len(PROC_SORTS)
        if self._shown is not None:
            self.show(self._shown)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it, where it is a sort key."""
        index = header_sort(event, HEADER_SORTS, PROC_SORTS)
        if index is not None:
            self._sort = index
            if self._shown is not None:
                self.show(self._shown)

    def action_toggle_grouped(self) -> None:
        self.grouped = not self.grouped
        if self._shown is not None:
            self.show(self._shown)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = cursor_key(self.query_one("#processes-table", DataTable))
        if key is not None and key.isdigit():
            self.post_message(ProcessSelected(int(key)))
