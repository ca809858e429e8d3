"""`?`: every key and what each column of the CPU pane measures, from the same column table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from netscope.model.rings import PRESSURE_NOTE
from netscope.model.sample import PROBE_LINGER_S
from netscope.panes import PANES
from netscope.ui.cpu_pane import CPU_COLUMNS
from netscope.ui.drops_pane import REASON_COLUMNS
from netscope.ui.latency_pane import EXPLAIN as LATENCY_EXPLAIN
from netscope.ui.rings_pane import DEVICE_COLUMNS


def pane_keys() -> tuple[tuple[str, str], ...]:
    """The panes' keys (netscope/panes.py): the home screen's, then the others' on one line."""
    home, *others = PANES
    names = [p.help or p.title for p in others]
    return (
        (f"{home.key} / 0", "the home screen: the receive path, stage by stage, and one line per pane"),
        (
            ", ".join(f"{p.key} / {i}" for i, p in enumerate(others, 1)),
            f"the {', '.join(names[:-1])} and {names[-1]} panes",
        ),
    )


KEYS = (
    ("?", "this help"),
    ("q / Ctrl-C", "quit (every BPF program is detached)"),
    ("p", "pause / resume the view (collection goes on)"),
    *pane_keys(),
    ("f", "findings: the bottleneck stage, its evidence, the knob and its value now; Enter: the evidence"),
    ("s", "in Flows: the next sort column"),
    ("/", "the filter: flows (pcap-like), processes (pid N, container ID); on a flow's screen, that flow"),
    (
        "Enter",
        "on a device: its CPUs and IRQ lines; on a drop reason or a logged drop: that reason; "
        "on a process: its sockets",
    ),
    ("+ / -", "refresh interval longer / shorter"),
    ("Tab / Shift-Tab", "next / previous table"),
    ("↑ ↓ PgUp PgDn", "move in a table"),
    ("Esc", "close this help, or go back"),
    ("R", "live: start / stop recording into netscope-HOST-DATE-TIME.nsrec in the current directory"),
    ("Space", "replay: play / pause the recording"),
    (
        ", / .",
        "one interval back / forward: live, through the last 10 minutes (collection goes on); "
        "replay, through the recording",
    ),
    ("End", "live: back to the newest interval after , or ."),
    ("[ / ]", "replay: slower / faster (0.25x … 16x)"),
    ("g", "replay: go to a time (HH:MM[:SS], or +N / -N seconds)"),
    (
        "mouse",
        "click a tab, a home-screen stage or line, a footer key; click a row to highlight it and "
        "again to open it; click a Flows column header to sort by it",
    ),
)


def help_renderable() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row(Text("Keys", style="bold underline"), "")
    for key, what in KEYS:
        table.add_row(key, what)
    table.add_row("", "")
    table.add_row(Text("Rings pane", style="bold underline"), "per device, every namespace; per second")
    for ring_column in DEVICE_COLUMNS:
        table.add_row(ring_column.label, ring_column.meaning)
    table.add_row("", PRESSURE_NOTE)
    table.add_row("", "")
    table.add_row(Text("CPU pane", style="bold underline"), "per CPU, per second; 'all' sums every CPU")
    for cpu_column in CPU_COLUMNS:
        table.add_row(cpu_column.label, cpu_column.meaning)
    table.add_row("", "")
    table.add_row(
        Text("Drops pane", style="bold underline"), "per drop reason, the running kernel's own names"
    )
    for reason_column in REASON_COLUMNS:
        table.add_row(reason_column.label, reason_column.meaning)
    table.add_row("last N intervals", "the reason's drops/s over time")
    table.add_row(
        "drop log",
        "individual drops (time, reason, 5-tuple, device, location, protocol, CPU), "
        "rate-limited in the kernel: counts stay exact; what was not logged or lost is counted",
    )
    table.add_row("", "")
    table.add_row(Text("Latency pane", style="bold underline"), LATENCY_EXPLAIN)
    table.add_row("p50/p90/p99/max", "per reading process; p99 yellow above 10 ms, red above 100 ms")
    table.add_row(
        "~, 1:N",
        "a figure from a sample: 1 packet (arrival, poll, softirq run) in N did the whole work, each "
        "counted N times over; counts the kernel keeps itself (devices, queues, softirq runs, softnet, "
        "snmp) are exact",
    )
    table.add_row("", "")
    table.add_row(
        Text("Sources", style="bold underline"),
        "irq:irq_handler_entry/exit, irq:softirq_raise/entry/exit, napi:napi_poll, skb:kfree_skb, "
        "net:netif_receive_skb, net:net_dev_start_xmit, sock:sk_data_ready, sock:sock_recv_length "
        "(raw tracepoints); rtnetlink stats64, ethtool and netdev netlink (qstats); "
        "/proc/net/softnet_stat, /proc/softirqs, /proc/stat, /proc/net/snmp, /proc/interrupts names "
        "mapped to devices through sysfs. "
        "– means no data: the probe is not live (see the probes line).",
    )
    table.add_row(
        Text("Probes", style="bold underline"),
        "each pane attaches only the BPF programs it reads, when it is shown (the home screen all but "
        f"flows); a program no screen needs is detached after {PROBE_LINGER_S:.0f} s. "
        "● live  ◌ compiling  · not attached  ✗ failed (the reason is shown)",
    )
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_renderable())
