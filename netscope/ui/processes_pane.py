"""The Processes pane: who receives. One row per process that read from its sockets, with its
container (or systemd unit), network namespace, read rate, copy latency and sockets; `k` sums the
rows per container. Enter on a process shows its sockets (as from the Latency pane)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.processes import ProcessesView, ProcRow
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns
from netscope.ui.latency_pane import ProcessSelected
from netscope.ui.pane import Pane
from netscope.ui.widgets import cursor_key, fixed_table, marked, show_text, slow_style

COLUMNS = (
    ("pid", 8),
    ("process", 14),
    ("container or unit", 26),
    ("netns", 10),
    ("reads/s", 8),
    ("B/s", 8),
    ("copy p99", 8),
    ("drops/s", 8),
    ("sockets", 7),
)
EXPLAIN = (
    "Processes that copied data from their sockets this interval (the copy-latency probe's readers), "
    "or had packets dropped at one (skb:kfree_skb's socket, its process found in /proc): the container "
    "from the process's cgroup v2 path (docker, podman, containerd, CRI-O, Kubernetes pods and their "
    "QoS class), else its systemd unit; sockets are its socket file descriptors. k: per container. "
    "Enter: the process's sockets."
)


def row_cells(row: ProcRow, netns_names: dict[int, str], host_netns: int) -> tuple[str | Text, ...]:
    if not row.netns:
        netns = NO_DATA
    elif row.netns == host_netns:
        netns = "host"
    else:
        netns = netns_names.get(row.netns, str(row.netns))
    return (
        str(row.pid) if row.pid else f"{row.processes} proc",
        row.comm,
        Text(row.group or NO_DATA, style="cyan" if row.container else ""),
        netns,
        Text(marked(fmt_count(row.reads_per_s), row.estimated), justify="right"),
        Text(marked(fmt_bytes(row.bytes_per_s), row.estimated), justify="right"),
        Text(marked(fmt_ns(row.p99_ns), row.estimated), justify="right", style=slow_style(row.p99_ns)),
        Text(fmt_count(row.drops_per_s), justify="right", style="red" if row.drops_per_s else ""),
        Text(NO_DATA if row.sockets is None else str(row.sockets), justify="right"),
    )


def summary(view: ProcessesView, grouped: bool) -> Text:
    containers = sum(1 for g in view.groups if g.container)
    others = len(view.groups) - containers
    text = Text()
    text.append(f"{plural(len(view.rows), 'process', 'processes')} read or had drops", style="bold")
    text.append(
        f", in {plural(containers, 'container')} and {plural(others, 'unit or cgroup', 'units or cgroups')}"
    )
    text.append("  (per container: k to list processes)" if grouped else "  (k: per container)", style="dim")
    return text


def plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


class ProcessesPane(Pane, Vertical):
    SPEC = BY_ID["processes"]
    BINDINGS = [Binding("k", "toggle_grouped", "Per container")]

    def __init__(self) -> None:
        super().__init__(id="processes-pane")
        self.border_title = "Processes"
        self.grouped = False
        self._shown: ViewModel | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="processes-probes")
        yield Static("waiting for the copy-latency probe's first interval", id="processes-summary")
        yield fixed_table("processes-table", COLUMNS)
        yield Static(Text(EXPLAIN, style="dim"), id="processes-note")

    def show(self, shown: ViewModel) -> None:
        self._shown = shown
        view = shown.processes
        if view is None:
            return
        show_text(self.query_one("#processes-summary", Static), summary(view, self.grouped))
        table: DataTable[str | Text] = self.query_one("#processes-table", DataTable)
        selected = cursor_key(table)
        table.clear()
        names = dict(shown.netns_names)
        for row in view.groups if self.grouped else view.rows:
            key = f"g:{row.group}" if self.grouped else str(row.pid)
            table.add_row(*row_cells(row, names, shown.info.netns), key=key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def action_toggle_grouped(self) -> None:
        self.grouped = not self.grouped
        if self._shown is not None:
            self.show(self._shown)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = cursor_key(self.query_one("#processes-table", DataTable))
        if key is not None and key.isdigit():
            self.post_message(ProcessSelected(int(key)))
