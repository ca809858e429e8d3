"""The Rings pane: every device (in every namespace) with its RX/TX rates, ring sizes, NAPI pressure
and losses before the stack; below, the selected device's queues and NAPI instances.

Enter on a device opens its detail (CPUs, IRQ lines); Esc goes back.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.rings import PRESSURE_NOTE, QSTATS_LOSSES, DeviceRow, Pressure, QueueRow, RingsView
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.format import NO_DATA, fmt_bql, fmt_bytes, fmt_count, fmt_pct, fmt_ratio, histogram_bar
from netscope.ui.pane import Pane
from netscope.ui.widgets import (
    Column,
    FitsWidth,
    cursor_key,
    estimated,
    fit_columns,
    fixed_table,
    set_columns,
)


def ring(current: int | None, maximum: int | None) -> str:
    """'256/4096' (current/max), 'n/a' when the driver has no ring settings."""
    if current is None:
        return "n/a"
    return f"{current}/{maximum}" if maximum is not None else str(current)


def per_s(value: int | None, interval_s: float) -> str:
    return fmt_count(value / interval_s) if value is not None else NO_DATA


DEVICE_COLUMNS: tuple[Column[tuple[DeviceRow, float]], ...] = (
    Column("RX pkt/s", 8, 1, lambda r: fmt_count(r[0].rx_pps), "packets received per second (all queues)"),
    Column("RX B/s", 7, 2, lambda r: fmt_bytes(r[0].rx_bps), "bytes received per second"),
    Column("TX pkt/s", 8, 1, lambda r: fmt_count(r[0].tx_pps), "packets sent per second"),
    Column("TX B/s", 7, 2, lambda r: fmt_bytes(r[0].tx_bps), "bytes sent per second"),
    Column(
        "RX ring",
        9,
        1,
        lambda r: ring(r[0].stats.rx_ring, r[0].stats.rx_ring_max) if r[0].stats else NO_DATA,
        "RX ring size, current/max (ethtool -g); n/a: the driver has none",
    ),
    Column(
        "TX ring",
        9,
        3,
        lambda r: ring(r[0].stats.tx_ring, r[0].stats.tx_ring_max) if r[0].stats else NO_DATA,
        "TX ring size, current/max",
    ),
    Column(
        "full%",
        5,
        1,
        lambda r: estimated(fmt_pct(r[0].pressure.full_pct), r[0].pressure.rate),
        "ring pressure: NAPI polls that used their whole budget (from sampled polls: ~)",
    ),
    Column(
        "pkt/poll",
        8,
        2,
        lambda r: estimated(fmt_ratio(r[0].pressure.packets_per_poll), r[0].pressure.rate),
        "packets per NAPI poll",
    ),
    Column(
        "lost/s",
        6,
        1,
        lambda r: per_s(r[0].lost_per_interval if r[0].stats else None, r[1]),
        "lost before the stack: rx_missed + rx_over + rx_fifo + rx_dropped (link stats64)",
    ),
    Column(
        "qdisc drop/s",
        12,
        3,
        lambda r: per_s(r[0].stats.qdisc_drops if r[0].stats else None, r[1]),
        "drops in the root qdisc (tc -s qdisc)",
    ),
    Column(
        "driver", 10, 3, lambda r: r[0].driver or NO_DATA, "the driver bound to the device", numeric=False
    ),
)


def queue_napi_id(device: DeviceRow, q: QueueRow) -> str:
    if q.napi_id is not None:
        return str(q.napi_id)
    napi = device.napi_for(q)
    return str(napi.napi_id) if napi else NO_DATA


def hw_drops(q: QueueRow, interval_s: float) -> str:
    """Losses the driver counts per queue (netdev qstats); n/a when it reports none of them."""
    losses = [v for name, v in q.qstats if name in QSTATS_LOSSES]
    return fmt_count(sum(losses) / interval_s) if losses else "n/a"


def napi_cells(label: str, p: Pressure, interval_s: float) -> tuple[str | Text, ...]:
    return (
        label,
        Text(estimated(fmt_count(p.polls / interval_s), p.rate), justify="right"),
        Text(estimated(fmt_ratio(p.packets_per_poll), p.rate), justify="right"),
        Text(estimated(fmt_pct(p.full_pct), p.rate), justify="right"),
        Text(histogram_bar(p.work_hist), style="cyan"),
        f"longest {p.longest_streak}" if p.longest_streak else "none",
    )


QUEUE_COLUMNS = (
    ("queue", 5),
    ("RX pkt/s", 8),
    ("RX B/s", 7),
    ("TX pkt/s", 8),
    ("TX B/s", 7),
    ("NAPI", 6),
    ("hw drop/s", 9),
    ("BQL inflight/limit", 18),
)
NAPI_COLUMNS = (
    ("NAPI", 12),
    ("polls/s", 7),
    ("pkt/poll", 8),
    ("full%", 5),
    ("work/poll 0→64+", 15),
    ("full-budget runs", 16),
)


class DeviceSelected(Drill):
    def __init__(self, key: tuple[int, int]) -> None:
        super().__init__()
        self.key = key

    def screen(self, shown: ViewModel) -> DrillScreen:
        from netscope.ui.device import DeviceScreen  # it lists flows: imported when opened

        return DeviceScreen(self.key, shown)


class RingsPane(Pane, FitsWidth, Vertical):
    SPEC = BY_ID["rings"]

    def __init__(self) -> None:
        super().__init__(id="rings-pane")
        self.border_title = "Rings"
        self._view: RingsView | None = None
        self._columns: tuple[Column[tuple[DeviceRow, float]], ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="rings-probes")
        yield DataTable(id="rings-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="rings-selected")
        yield fixed_table("rings-queues", QUEUE_COLUMNS)
        yield fixed_table("rings-napi", NAPI_COLUMNS)
        yield Static(Text(PRESSURE_NOTE, style="dim"), id="rings-note")

    def refit(self) -> None:
        if self._view is not None:
            self.show_view(self._view)

    def show(self, shown: ViewModel) -> None:
        self.show_view(shown.rings)

    def show_view(self, view: RingsView) -> None:
        self._view = view
        table: DataTable[str | Text] = self.query_one("#rings-table", DataTable)
        columns = fit_columns(DEVICE_COLUMNS, self.fitted_width(160), reserved=26)
        if columns != self._columns:
            set_columns(table, ("device", 24), columns)
            self._columns = columns
        selected = self.selected_key()
        table.clear()
        for d in view.devices:
            label = Text(d.label, style="bold" if d.rx_pps + d.tx_pps else "dim")
            table.add_row(
                label, *(c.cell((d, view.interval_s)) for c in columns), key=f"{d.netns}:{d.ifindex}"
            )
        key = f"{selected[0]}:{selected[1]}" if selected else None
        if key is not None and key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)
        self._show_selected()

    def selected_key(self) -> tuple[int, int] | None:
        value = cursor_key(self.query_one("#rings-table", DataTable))
        if not value:
            return None
        netns, ifindex = value.split(":")
        return int(netns), int(ifindex)

    def selected_device(self) -> DeviceRow | None:
        key = self.selected_key()
        if self._view is None or key is None:
            return None
        return next((d for d in self._view.devices if (d.netns, d.ifindex) == key), None)

    def _show_selected(self) -> None:
        device = self.selected_device()
        dt = self._view.interval_s if self._view else 1.0
        title = Text()
        queues: DataTable[str | Text] = self.query_one("#rings-queues", DataTable)
        napi: DataTable[str | Text] = self.query_one("#rings-napi", DataTable)
        queues.clear()
        napi.clear()
        if device is not None:
            title.append(f"▸ {device.label}", style="bold")
            s = device.stats
            if s is not None:
                title.append(
                    f"  link stats64: RX {fmt_count(s.rx_packets / dt)} pkt/s, "
                    f"TX {fmt_count(s.tx_packets / dt)} pkt/s, "
                    f"missed {s.rx_missed}, over {s.rx_over}, fifo {s.rx_fifo}, "
                    f"rx_dropped {s.rx_dropped}, tx_dropped {s.tx_dropped} in {dt:.1f}s"
                )
            title.append("  (Enter: CPUs and IRQ lines)", style="dim")
            for q in device.queues:
                rate = 2 if q.estimated else 1  # a sample of the hooks': marked ~
                queues.add_row(
                    q.label,
                    Text(estimated(fmt_count(q.rx_pps), rate), justify="right"),
                    Text(estimated(fmt_bytes(q.rx_bps), rate), justify="right"),
                    Text(estimated(fmt_count(q.tx_pps), rate), justify="right"),
                    Text(estimated(fmt_bytes(q.tx_bps), rate), justify="right"),
                    queue_napi_id(device, q),
                    Text(hw_drops(q, dt), justify="right"),
                    fmt_bql(q.bql_inflight, q.bql_limit),
                )
            for n in device.napi:
                napi.add_row(*napi_cells(f"napi {n.napi_id}", n.pressure, dt))
        if self._view is not None and self._view.backlog is not None:
            napi.add_row(*napi_cells("CPU backlog", self._view.backlog.pressure, dt))
        self.query_one("#rings-selected", Static).update(title)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "rings-table":
            self._show_selected()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a device, or on one of its queues: the device's CPUs and IRQ lines."""
        event.stop()
        key = self.selected_key()
        if key is not None:
            self.post_message(DeviceSelected(key))
