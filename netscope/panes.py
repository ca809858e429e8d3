"""Every pane of the TUI, in the order of its tabs: one line each. From this list come the tabs and
their keys (the app's bindings, the key bar, the help's key list), the probes a pane attaches while
it is shown, the table that takes the keys there, the home screen's line per pane, and the sections
of the headless commands (`--sections`).

Adding a pane is a module under netscope/ui/ whose widget implements `netscope.ui.pane.Pane`
(`show(shown)`, `show_probes(statuses)`), and one line here. The list imports nothing from the UI:
the headless commands read it without loading Textual; the TUI imports each pane's widget by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaneSpec:
    id: str  # its tab, its section (--sections) and its key's action: show_pane('<id>')
    title: str  # its tab's label and its key's in the key bar
    key: str  # its letter; its place in PANES gives it a digit too (the first pane's is 0)
    probes: tuple[str, ...]  # the BPF probes attached while it is shown
    widget: str  # its widget, "module:Class" under netscope.ui
    main_table: str = ""  # the table that takes the keys while it is shown ("": none)
    help: str = ""  # its name in the help's key list ("": its title)
    section: bool = True  # a section of the headless commands (the home screen's are all of them)


PANES: tuple[PaneSpec, ...] = (
    # Its probes: the rest of every stage is the kernel's own counters; tcp for the findings on TCP
    # connections (retransmits, a reader's zero window).
    PaneSpec(
        "home",
        "Home",
        "h",
        ("hardirq", "drops", "latency", "tcp"),
        "home_pane:HomePane",
        section=False,
    ),
    PaneSpec("rings", "Rings", "r", ("rings", "napi"), "rings_pane:RingsPane", "#rings-table"),
    PaneSpec("cpus", "CPUs", "c", ("hardirq", "softirq", "napi"), "cpu_pane:CpuPane", "#cpu-table"),
    PaneSpec("drops", "Drops", "d", ("drops",), "drops_pane:DropsPane", "#drops-table"),
    PaneSpec("latency", "Latency", "l", ("latency", "stack"), "latency_pane:LatencyPane", "#latency-table"),
    PaneSpec(
        "flows",
        "Flows",
        "t",
        ("flows", "latency", "tcp"),
        "flows_pane:FlowsPane",
        "#flows-table",
        "Flows (5-tuples)",
    ),
    PaneSpec(
        "processes",
        "Processes",
        "o",
        ("latency", "drops", "send"),
        "processes_pane:ProcessesPane",
        "#processes-table",
    ),
    # qdiscs, BQL and the devices' counts are the kernel's own; the hooks: drop reasons, the wait
    # in the qdiscs, and the split over TX queues of a device whose driver does not count per queue.
    PaneSpec(
        "tx",
        "TX",
        "x",
        ("rings", "drops", "qdisc"),
        "tx_pane:TxPane",
        "#tx-table",
        "TX (qdisc, BQL, driver)",
    ),
)


BY_ID = {p.id: p for p in PANES}
