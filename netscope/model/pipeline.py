"""The receive path as one line of stages, for the home screen: each stage's rate, its losses and
whether it is where packets are lost now (the bottleneck). Pure: built from a ViewModel snapshot.

Each stage's rate is the kernel's own count: the devices' (stats64) at the NIC and into the stack,
interrupts (/proc/interrupts), packets the softirqs processed (softnet_stat), data queued on and read
from sockets (the latency probe's exact per-socket counts). Nothing on this screen needs a hook that
runs for every packet but the copy latency's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from netscope.model.balance import SOCKET_REASONS, StageBalance
from netscope.model.cpu import CpuView
from netscope.model.drops import DropsView
from netscope.model.latency import LatencyView
from netscope.model.rings import RingsView
from netscope.model.sample import Sample
from netscope.model.tx import IP_OUTNOROUTES, SEND_REASONS, TX_REASONS, VIRTUAL_TX_REASONS, TxView

if TYPE_CHECKING:  # the timeline builds the stages of each interval: it imports this module
    from netscope.model.timeline import ViewModel

# The stack's drop reasons on its box, the most first (the Drops pane has them all): each is two
# lines of a box, and the way out needs the height of a 40-line terminal too.
STACK_LOSSES_SHOWN = 2
# A stage losing at least this share of what it handles, or the most of all, is the bottleneck.
BOTTLENECK_SHARE = 0.001

# Each loss is counted once, at its stage. Drop reasons (skb:kfree_skb) that are not the stack's:
# The backlog's: softnet_stat's `dropped` counts them at the NAPI/backlog stage.
BACKLOG_REASONS = frozenset({"CPU_BACKLOG"})
NOT_THE_STACKS = frozenset(SOCKET_REASONS) | BACKLOG_REASONS | TX_REASONS


@dataclass(frozen=True)
class Flow:
    """A stage's balance over every namespace, per second: what came in and went out (its losses
    are the stage's own), and the silent loss confirmed for it (model/balance.py)."""

    in_per_s: float
    out_per_s: float
    silent_per_s: float
    estimated: bool = False  # from sampled hooks (the socket stage's): ~


@dataclass(frozen=True)
class Stage:
    key: str  # the pane its full view is in
    name: str
    rate: float | None  # per second; None: its probe is not live
    unit: str
    losses: tuple[tuple[str, float], ...]  # (what, per second), only the non-zero ones
    bottleneck: bool = False
    flow: Flow | None = None  # its balance, where the kernel's counters give one

    @property
    def lost_per_s(self) -> float:
        return sum(v for _, v in self.losses)


def stage_flow(
    rows: Iterable[StageBalance], silent: Iterable[StageBalance], interval_s: float
) -> Flow | None:
    """Rows of consecutive stages, summed over the namespaces: in of the first, out of the last;
    and the silent losses confirmed for them (per second of the interval they happened in)."""
    rows = list(rows)
    if not rows:
        return None
    first, last = rows[0].stage, rows[-1].stage
    dt = interval_s or 1.0
    return Flow(
        sum(r.in_ for r in rows if r.stage == first) / dt,
        sum(r.out for r in rows if r.stage == last) / dt,
        sum(r.beyond_noise for r in silent) / dt,
        any(r.estimated for r in rows),
    )


def build_pipeline(shown: ViewModel) -> tuple[Stage, ...]:
    """The newest interval's stages: the timeline builds them with each interval (`build_stages`,
    its silent losses confirmed), so a view always has them."""
    return shown.stage_history[-1]


def build_stages(
    sample: Sample,
    cpu_view: CpuView | None,
    rings: RingsView | None,
    drops: DropsView | None,
    latency: LatencyView | None,
    balance: tuple[StageBalance, ...],
    silent: tuple[StageBalance, ...],
    tx: TxView | None = None,
) -> tuple[Stage, ...]:
    """RX left to right: NIC rings → hardirq → NAPI/softirq → stack → socket → user copy; then TX:
    socket send → qdisc → driver. `drops` and `latency`: the latest views their probes reported
    (they may skip an interval); `balance`: the interval's stage balance; `silent`: the previous
    interval's confirmed silent losses (model/balance.py confirm_silent); `tx`: the interval's TX
    view."""
    cpu = cpu_view.total if cpu_view else None
    dt = sample.interval_s

    ring_losses = sum(d.lost_per_interval for d in rings.devices) / rings.interval_s if rings else 0.0
    by_reason = {r.name: r.per_s for r in drops.rows} if drops else {}
    stack_drops = tuple((name, v) for name, v in by_reason.items() if name not in NOT_THE_STACKS)
    socket_drops = tuple((name, by_reason[name]) for name in SOCKET_REASONS if by_reason.get(name))

    def nonzero(*pairs: tuple[str, float | None]) -> tuple[tuple[str, float], ...]:
        return tuple((what, v) for what, v in pairs if v)

    received = sum(d.rx_pps for d in rings.devices) if rings and rings.live else None

    def flow(*names: str) -> Flow | None:
        rows = sorted((r for r in balance if r.stage in names), key=lambda r: names.index(r.stage))
        return stage_flow(rows, [r for r in silent if r.stage in names], dt)

    stages = [
        Stage(
            "rings",
            "NIC rings",
            received,
            "pkt/s",
            nonzero(("ring overruns, missed, dropped", ring_losses)),
            flow=flow("device"),
        ),
        Stage("cpus", "hardirq", cpu.hardirqs_per_s if cpu else None, "irq/s", ()),
        Stage(
            "cpus",
            "NAPI / softirq",
            cpu.processed_per_s if cpu else None,
            "pkt/s",
            nonzero(
                ("backlog drops", cpu.backlog_drops_per_s if cpu else None),
                ("time_squeeze", cpu.time_squeeze_per_s if cpu else None),
            ),
            flow=flow("backlog"),
        ),
        Stage(
            "drops",
            "stack (IP, netfilter, TCP/UDP)",
            received,
            "pkt/s in",
            tuple(sorted(stack_drops, key=lambda kv: -kv[1]))[:STACK_LOSSES_SHOWN],
            flow=flow("ip", "transport"),
        ),
        Stage(
            "latency",
            "socket",
            latency.arrivals / dt if latency and latency.arrivals is not None else None,
            "arrivals/s",
            socket_drops,
            flow=flow("socket"),
        ),
        Stage("latency", "user copy", latency.reads_per_s if latency else None, "reads/s", ()),
    ]
    return (*bottleneck(stages), *bottleneck(tx_stages(tx, by_reason, flow("tx"))))


def bottleneck(stages: list[Stage]) -> list[Stage]:
    """The stage that loses the most, if it loses anything worth the name, marked the bottleneck."""
    worst = max(stages, key=lambda s: s.lost_per_s)
    handled = max((s.rate or 0.0) for s in stages) or 1.0
    if worst.lost_per_s and worst.lost_per_s >= BOTTLENECK_SHARE * handled:
        return [replace(s, bottleneck=s is worst) for s in stages]
    return stages


def tx_stages(tx: TxView | None, by_reason: dict[str, float], flow: Flow | None) -> list[Stage]:
    """The way out: what IP took from the sockets (and its losses by counter: no buffer, no
    route; by reason, per second in `by_reason`: cgroup BPF, the neighbour layer), what the
    qdiscs sent (their drops), what the devices sent (tx_dropped, and what virtual devices drop
    by reason; the stage balance from IP's OutTransmits on)."""
    live = tx is not None and tx.live
    send_reasons = sorted(
        ((n, v) for n, v in by_reason.items() if n in SEND_REASONS and n != IP_OUTNOROUTES),
        key=lambda kv: -kv[1],
    )
    virtual = sorted(((n, v) for n, v in by_reason.items() if n in VIRTUAL_TX_REASONS), key=lambda kv: -kv[1])

    def nonzero(*pairs: tuple[str, float]) -> tuple[tuple[str, float], ...]:
        return tuple((what, v) for what, v in pairs if v)

    return [
        Stage(
            "tx",
            "socket send",
            tx.per_s(tx.out_requests) if tx is not None and tx.out_requests is not None else None,
            "pkt/s",
            nonzero(*((n, tx.per_s(v)) for n, v in tx.send_losses), *send_reasons) if tx else (),
        ),
        Stage(
            "tx",
            "qdisc",
            tx.per_s(tx.qdisc_packets) if tx is not None and live else None,
            "pkt/s",
            nonzero(("qdisc drops", tx.per_s(tx.qdisc_drops))) if tx else (),
        ),
        Stage(
            "tx",
            "driver",
            tx.per_s(tx.tx_packets) if tx is not None and live else None,
            "pkt/s",
            nonzero(("tx_dropped", tx.per_s(tx.tx_dropped)), *virtual) if tx else (),
            flow=flow,
        ),
    ]
