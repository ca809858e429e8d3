"""The TX pane: the way out, stage by stage (socket send → qdisc → driver), then every device with
its root qdisc, what it holds and drops and the limit in force, and BQL; below, the selected
device's qdiscs, TX queues and drop reasons.

Enter on a device opens its detail (CPUs, IRQ lines), as on the Rings pane; Esc goes back.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.pipeline import Stage, build_pipeline
from netscope.model.timeline import ViewModel
from netscope.model.tx import TxDevice, TxQueueRow, TxView
from netscope.panes import BY_ID
from netscope.ui.format import NO_DATA, fmt_bql, fmt_bytes, fmt_count, fmt_ns
from netscope.ui.pane import Pane
from netscope.ui.rings_pane import DeviceSelected
from netscope.ui.widgets import (
    Column,
    FitsWidth,
    cursor_key,
    estimated,
    fit_columns,
    fixed_table,
    marked,
    set_columns,
)

TX_NOTE = (
    "qdisc: tc -s qdisc counters (drops: the qdisc's limit was reached, or its policy dropped); "
    "queued: what it holds now. BQL: bytes the driver has in flight against the limit BQL set "
    "(a queue at its limit is stopped and the qdisc queues); n/a: the device keeps no BQL "
    "(veth, bridges and other software devices)."
)


def bql_cell(queues: tuple[TxQueueRow, ...]) -> str:
    """Bytes in flight / limit over the device's queues; 'n/a' when it keeps no BQL."""
    with_bql = [q for q in queues if q.bql_limit is not None]
    if not with_bql:
        return fmt_bql(None, None)
    return fmt_bql(sum(q.bql_inflight or 0 for q in with_bql), sum(q.bql_limit or 0 for q in with_bql))


def _per_s(d: TxDevice, count: int) -> str:
    return fmt_count(count / d.interval_s) if d.interval_s > 0 else NO_DATA


def _loss(count: int) -> str:
    return "red" if count else ""


DEVICE_COLUMNS: tuple[Column[TxDevice], ...] = (
    Column("TX pkt/s", 8, 1, lambda d: fmt_count(d.tx_pps), "packets sent per second (link stats64)"),
    Column("TX B/s", 7, 3, lambda d: fmt_bytes(d.tx_bps), "bytes sent per second"),
    Column("qdisc", 10, 1, lambda d: d.root_kind or NO_DATA, "its root qdisc (noqueue: none)", numeric=False),
    Column(
        "queued",
        10,
        2,
        lambda d: f"{d.queued[0]}p {fmt_bytes(d.queued[1])}" if d.root else NO_DATA,
        "packets and bytes its root qdisc holds now",
    ),
    Column(
        "drop/s",
        7,
        1,
        lambda d: _per_s(d, d.qdisc_drops),
        "dropped by its qdiscs (the root's limit or policy, egress filters): tc -s qdisc",
        style=lambda d: _loss(d.qdisc_drops),
    ),
    Column(
        "limit",
        16,
        1,
        lambda d: (d.root.limit if d.root else "") or NO_DATA,
        "the root qdisc's limit in force: its own option, or the device's txqueuelen (pfifo_fast)",
        numeric=False,
    ),
    Column(
        "requeue/s",
        9,
        3,
        lambda d: _per_s(d, d.root.stats.requeues) if d.root else NO_DATA,
        "handed back by the driver (its queue busy) and queued again",
    ),
    Column(
        "overlimit/s",
        11,
        3,
        lambda d: _per_s(d, d.root.stats.overlimits) if d.root else NO_DATA,
        "held back by the qdisc's shaping (a rate limit reached)",
    ),
    Column(
        "tx_drop/s",
        9,
        1,
        lambda d: _per_s(d, d.tx_dropped),
        "dropped by the device itself (stats64 tx_dropped: down, ring full, driver)",
        style=lambda d: _loss(d.tx_dropped),
    ),
    Column(
        "BQL",
        14,
        2,
        lambda d: bql_cell(d.queues),
        "bytes in flight / BQL limit, its TX queues summed (sysfs)",
    ),
)
QDISC_COLUMNS = (
    ("qdisc", 28),
    ("pkt/s", 8),
    ("B/s", 7),
    ("drop/s", 7),
    ("requeue/s", 9),
    ("overlimit/s", 11),
    ("queued", 11),
    ("limit", 18),
)
QUEUE_COLUMNS = (("TX queue", 8), ("TX pkt/s", 8), ("TX B/s", 7), ("BQL inflight/limit", 18), ("", 12))


def path_text(stages: list[Stage]) -> Text:
    """The way out on one line, as the home screen has it: each stage's rate and losses, the
    bottleneck in red, the silent loss where the counters leave one."""
    text = Text()
    for i, stage in enumerate(stages):
        if i:
            text.append("  →  ", style="dim")
        text.append(stage.name, style="bold red" if stage.bottleneck else "bold")
        text.append(f" {fmt_count(stage.rate)} {stage.unit}" if stage.rate is not None else f" {NO_DATA}")
        for what, per_s in stage.losses:
            text.append(f"  ✗ {fmt_count(per_s)}/s {what}", style="red")
        if stage.flow is not None and stage.flow.silent_per_s:
            text.append(f"  ? {fmt_count(stage.flow.silent_per_s)}/s silent", style="bold red")
    return text


class TxPane(Pane, FitsWidth, Vertical):
    SPEC = BY_ID["tx"]

    def __init__(self) -> None:
        super().__init__(id="tx-pane")
        self.border_title = "TX: the way out"
        self._view: TxView | None = None
        self._stages: list[Stage] = []
        self._columns: tuple[Column[TxDevice], ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="tx-probes")
        yield Static(id="tx-path")
        yield DataTable(id="tx-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="tx-selected")
        yield fixed_table("tx-qdiscs", QDISC_COLUMNS)
        yield fixed_table("tx-queues", QUEUE_COLUMNS)
        yield Static(Text(TX_NOTE, style="dim"), id="tx-note")

    def refit(self) -> None:
        if self._view is not None:
            self.show_view(self._view, self._stages)

    def show(self, shown: ViewModel) -> None:
        self.show_view(shown.tx, [s for s in build_pipeline(shown) if s.key == "tx"])

    def show_view(self, view: TxView, stages: list[Stage]) -> None:
        self._view, self._stages = view, stages
        self.query_one("#tx-path", Static).update(path_text(stages))
        table: DataTable[str | Text] = self.query_one("#tx-table", DataTable)
        columns = fit_columns(DEVICE_COLUMNS, self.fitted_width(160), reserved=26)
        if columns != self._columns:
            set_columns(table, ("device", 24), columns)
            self._columns = columns
        selected = cursor_key(table)
        table.clear()
        for d in view.devices:
            label = Text(d.label, style="bold" if d.tx_pps or d.qdisc_drops else "dim")
            table.add_row(label, *(c.cell(d) for c in columns), key=f"{d.netns}:{d.ifindex}")
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)
        self._show_selected()

    def selected_device(self) -> TxDevice | None:
        key = cursor_key(self.query_one("#tx-table", DataTable))
        if self._view is None or key is None:
            return None
        return next((d for d in self._view.devices if f"{d.netns}:{d.ifindex}" == key), None)

    def _show_selected(self) -> None:
        device = self.selected_device()
        qdiscs: DataTable[str | Text] = self.query_one("#tx-qdiscs", DataTable)
        queues: DataTable[str | Text] = self.query_one("#tx-queues", DataTable)
        qdiscs.clear()
        queues.clear()
        title = Text()
        if device is not None:
            title.append(f"▸ {device.label}", style="bold")
            if device.txqueuelen is not None:
                title.append(f"  txqueuelen {device.txqueuelen}")
            if device.wait is not None:
                p50, p99 = (
                    estimated(fmt_ns(v), device.wait_rate) for v in (device.wait.p50_ns, device.wait.p99_ns)
                )
                title.append(f"  waited in the qdisc p50 {p50} p99 {p99}")
            reasons = ", ".join(f"{name} {_per_s(device, n)}/s" for name, n in device.reasons)
            title.append(f"  drop reasons: {reasons}" if reasons else "  no TX drop reasons", style="")
            title.append("  (Enter: CPUs and IRQ lines)", style="dim")
            for q in device.qdiscs:
                s = q.stats
                qdiscs.add_row(
                    q.label,
                    Text(fmt_count(q.per_s(s.packets)), justify="right"),
                    Text(fmt_bytes(q.per_s(s.bytes)), justify="right"),
                    Text(fmt_count(q.per_s(s.drops)), justify="right", style=_loss(s.drops)),
                    Text(fmt_count(q.per_s(s.requeues)), justify="right"),
                    Text(fmt_count(q.per_s(s.overlimits)), justify="right"),
                    Text(f"{s.qlen}p {fmt_bytes(s.backlog)}", justify="right"),
                    q.limit or NO_DATA,
                )
            for tq in device.queues:
                queues.add_row(
                    str(tq.queue),
                    Text(marked(fmt_count(tq.tx_pps), tq.estimated), justify="right"),
                    Text(marked(fmt_bytes(tq.tx_bps), tq.estimated), justify="right"),
                    fmt_bql(tq.bql_inflight, tq.bql_limit),
                    Text("stopped (BQL)", style="yellow") if tq.bql_full else "",
                )
        self.query_one("#tx-selected", Static).update(title)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "tx-table":
            self._show_selected()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a device: its CPUs and IRQ lines."""
        event.stop()
        device = self.selected_device()
        if device is not None:
            self.post_message(DeviceSelected((device.netns, device.ifindex)))
