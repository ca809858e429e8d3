"""One CPU in detail: the flows it received (its NAPI/softirq work), live. Esc: back."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from netscope.model.flows import flows_where
from netscope.model.timeline import ViewModel
from netscope.ui.drill import DrillScreen
from netscope.ui.flows_pane import FlowList
from netscope.ui.format import fmt_count, fmt_ns, fmt_pct
from netscope.ui.key_bar import KeyBar


class CpuScreen(DrillScreen):
    PROBES = ("hardirq", "softirq", "napi", "flows")  # attached while this screen is open

    def __init__(self, cpu: int, shown: ViewModel) -> None:
        super().__init__()
        self.cpu = cpu
        self._initial = shown

    def compose(self) -> ComposeResult:
        with Vertical(id="cpu-box"):
            yield Static(id="cpu-title")
            yield Static(Text("Flows it received (Enter: the flow)", style="bold"))
            yield FlowList("cpu-flows", f"machine › CPUs › CPU{self.cpu}")
        yield KeyBar()

    def on_mount(self) -> None:
        self.update_view(self._initial)

    def update_view(self, shown: ViewModel) -> None:
        view = shown.cpu_history[-1] if shown.cpu_history else None
        row = next((r for r in view.rows if r.cpu == self.cpu), None) if view else None
        title = Text(f"CPU{self.cpu}", style="bold")
        if row is not None:
            title.append(
                f"  NET_RX {fmt_count(row.net_rx_runs_per_s)} runs/s "
                f"({fmt_pct(row.net_rx_time_pct)}% of the CPU), "
                f"raise-to-run max {fmt_ns(row.net_rx_wait_max_ns)}, "
                f"NAPI {fmt_count(row.napi_polls_per_s)} polls/s"
            )
        self.query_one("#cpu-title", Static).update(title)
        if shown.flows is not None:
            self.query_one(FlowList).show(flows_where(shown.flows, cpu=self.cpu), shown.flows.interval_s)
