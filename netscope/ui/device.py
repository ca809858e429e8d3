"""One device in detail: which CPUs poll it (NAPI) and which IRQ lines serve it. Live; Esc: back."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.flows import flows_where
from netscope.model.timeline import ViewModel
from netscope.ui.drill import DrillScreen
from netscope.ui.flows_pane import FlowList
from netscope.ui.format import fmt_count, fmt_pct, fmt_ratio
from netscope.ui.key_bar import KeyBar


class DeviceScreen(DrillScreen):
    PROBES = ("rings", "napi", "hardirq", "flows")  # attached while this screen is open

    def __init__(self, key: tuple[int, int], shown: ViewModel) -> None:
        super().__init__()
        self.key = key
        self._initial = shown

    def compose(self) -> ComposeResult:
        with Vertical(id="device-box"):
            yield Static(id="device-title")
            yield Static(Text("NAPI polls per CPU", style="bold"))
            yield DataTable(id="device-cpus", cursor_type="row")
            yield Static(Text("IRQ lines of this device (per second)", style="bold"))
            yield DataTable(id="device-irqs", cursor_type="row")
            yield Static(Text("Flows received on it (Enter: the flow)", style="bold"))
            yield FlowList("device-flows", "machine › rings › device")
        yield KeyBar()

    def on_mount(self) -> None:
        self.update_view(self._initial)

    def update_view(self, shown: ViewModel) -> None:
        rings = shown.rings
        device = next((d for d in rings.devices if (d.netns, d.ifindex) == self.key), None) if rings else None
        dt = shown.latest.interval_s
        title = Text()
        cpus: DataTable[str | Text] = self.query_one("#device-cpus", DataTable)
        irqs: DataTable[str | Text] = self.query_one("#device-irqs", DataTable)
        if not cpus.columns:
            cpus.add_columns("CPU", "polls/s", "share%")
            irqs.add_columns("IRQ", "name", "queue", "total/s", *(f"CPU{c}/s" for c in shown.info.cpus))
        cpus.clear()
        irqs.clear()
        if device is None:
            title.append("this device carried no traffic in the last interval, or is gone", style="dim")
        else:
            title.append(device.label, style="bold")
            title.append(
                f"  {device.driver or 'no driver'}  RX {fmt_count(device.rx_pps)} pkt/s  TX "
                f"{fmt_count(device.tx_pps)} pkt/s  ring pressure {fmt_pct(device.pressure.full_pct)}%  "
                f"{fmt_ratio(device.pressure.packets_per_poll)} pkt/poll"
            )
            per_cpu = [sum(col) for col in zip(*(n.polls_per_cpu for n in device.napi), strict=True)]
            total = sum(per_cpu) or 1
            for cpu, polls in zip(shown.info.cpus, per_cpu, strict=False):
                cpus.add_row(str(cpu), fmt_count(polls / dt), fmt_pct(100.0 * polls / total))
            if device.netns == shown.info.netns:
                view = shown.cpu_history[-1] if shown.cpu_history else None
                for irq in view.irqs if view else ():
                    if irq.device == device.ifname:
                        irqs.add_row(
                            str(irq.irq),
                            irq.name,
                            irq.queue or "-",
                            fmt_count(irq.per_s),
                            *(fmt_count(v) for v in irq.per_cpu_per_s),
                        )
            else:
                title.append("\nits IRQ lines, if any, belong to a device in another namespace", style="dim")
        self.query_one("#device-title", Static).update(title)
        if shown.flows is not None:
            flows = self.query_one(FlowList)
            if device is not None:
                flows.trail = f"machine › rings › {device.label}"
            flows.show(flows_where(shown.flows, device=self.key), shown.flows.interval_s)
