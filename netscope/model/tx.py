"""The TX view: per device, the way out (its qdiscs, its TX queues with BQL, what the driver
dropped) and the transmit path's drop reasons. Pure.

Counters first: packets, bytes and drops are the kernel's own (stats64, `tc -s` qdisc stats, the
netdev family's per-queue qstats), BQL the sysfs gauges read with them. Hooks tell only what no
counter does: the drop reasons (the drops probe), and a multi-queue device's split over its queues
where the driver keeps no per-queue counters (the rings probe's sample, marked estimated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from netscope.model.drops import reasons_by
from netscope.model.latency import PROC_BITS, Percentiles
from netscope.model.rings import DeviceRow, RingsView
from netscope.model.sample import DeviceStats, QdiscStats, Sample, rate_of

# Drop reasons of the way out (enum skb_drop_reason), by where they happen. Those of the qdiscs are
# in a qdisc's `dropped` (qdisc_drop frees with them; an egress filter's TC_EGRESS in the clsact
# qdisc's); the driver's in the device's tx_dropped (__dev_queue_xmit).
QDISC_REASONS = frozenset(
    {
        "QDISC_DROP",
        "QDISC_OVERLIMIT",
        "QDISC_CONGESTED",
        "CAKE_FLOOD",
        "FQ_BAND_LIMIT",
        "FQ_HORIZON_LIMIT",
        "FQ_FLOW_LIMIT",
        "DUALPI2_STEP_DROP",
        "TC_EGRESS",
    }
)
DRIVER_REASONS = frozenset({"DEV_READY", "FULL_RING", "RECURSION_LIMIT"})
# Before the qdisc: routing, cgroup BPF, the neighbour layer; and what virtual devices drop on
# their way out. No TX counter holds these: they are shown by reason.
IP_OUTNOROUTES = "IP_OUTNOROUTES"  # counted by Ip OutNoRoutes too
SEND_REASONS = frozenset(
    {
        IP_OUTNOROUTES,
        "BPF_CGROUP_EGRESS",
        "IPV6DISABLED",
        "PSP_OUTPUT",
        "NEIGH_CREATEFAIL",
        "NEIGH_FAILED",
        "NEIGH_QUEUEFULL",
        "NEIGH_DEAD",
        "NEIGH_HH_FILLFAIL",
    }
)
VIRTUAL_TX_REASONS = frozenset({"TAP_TXFILTER", "NO_TX_TARGET", "TUNNEL_TXINFO"})
UNCOUNTED_TX_REASONS = SEND_REASONS | VIRTUAL_TX_REASONS
COUNTED_TX_REASONS = QDISC_REASONS | DRIVER_REASONS
TX_REASONS = UNCOUNTED_TX_REASONS | COUNTED_TX_REASONS
# What IP took from the sockets to send, and what it could not route: per namespace, from the pass
# that reads the stage balance's (/proc/net/snmp, snmp6). Ip OutDiscards and Udp SndbufErrors are
# not the send stage's: ip_send_skb and udp_send_skb count there each packet a qdisc or a device
# dropped further on (NET_XMIT_DROP comes back as ENOBUFS), which the qdisc and driver stages count.
IP_OUT_REQUESTS = (("Ip", "OutRequests"), ("Ip6", "OutRequests"))
SEND_LOSSES = (
    ("Ip", "OutNoRoutes"),  # IP_OUTNOROUTES: counted here, not shown again by reason
    ("Ip6", "OutNoRoutes"),
)
SEND_COUNTERS = IP_OUT_REQUESTS + SEND_LOSSES


def tc_handle(handle: int) -> str:
    """A qdisc handle or parent as tc prints it: "8001:", "8001:1", "root"."""
    if handle == 0xFFFFFFFF:
        return "root"
    major, minor = handle >> 16, handle & 0xFFFF
    return f"{major:x}:{minor:x}" if minor else f"{major:x}:"


@dataclass(frozen=True)
class QdiscRow:
    stats: QdiscStats
    interval_s: float

    @property
    def label(self) -> str:
        """'tbf 8001: root', 'pfifo 10: parent 8001:1'."""
        where = "root" if self.stats.root else f"parent {tc_handle(self.stats.parent)}"
        return f"{self.stats.kind} {tc_handle(self.stats.handle)} {where}"

    @property
    def limit(self) -> str:
        """The limit in force and its knob: '1000p txqueuelen', '3000b', '' when none is known."""
        s = self.stats
        if s.limit is None:
            return ""
        unit = "p" if s.limit_unit == "packets" else "b"
        return f"{s.limit}{unit}" + (" txqueuelen" if s.limit_knob == "txqueuelen" else "")

    def per_s(self, count: int) -> float:
        return count / self.interval_s if self.interval_s > 0 else 0.0


@dataclass(frozen=True)
class TxQueueRow:
    queue: int
    tx_pps: float
    tx_bps: float
    tx_packets: int  # in the interval
    tx_bytes: int
    estimated: bool  # split by the rings probe's sample, not counted per queue by the driver
    bql_inflight: int | None  # bytes handed to the driver and not yet completed (None: no BQL)
    bql_limit: int | None

    @property
    def bql_full(self) -> bool:
        """BQL stopped the queue at the read: the bytes in flight reached the limit."""
        return (
            self.bql_limit is not None
            and self.bql_inflight is not None
            and self.bql_inflight >= self.bql_limit > 0
        )


@dataclass(frozen=True)
class TxDevice:
    netns: int
    ifindex: int
    label: str  # name, @namespace when not netscope's own
    ifname: str
    kind: str  # "veth", "loopback"... ("" a NIC)
    tx_pps: float
    tx_bps: float
    tx_packets: int  # stats64, in the interval
    tx_bytes: int
    tx_dropped: int
    txqueuelen: int | None
    qdiscs: tuple[QdiscRow, ...]  # the root first
    queues: tuple[TxQueueRow, ...]
    reasons: tuple[tuple[str, int], ...]  # the way out's drop reasons at this device, the most first
    interval_s: float
    wait: Percentiles | None = None  # in its qdisc, of sampled packets (None: not measured)
    wait_rate: int = 1  # 1 in N packets timed

    @property
    def root(self) -> QdiscRow | None:
        return self.qdiscs[0] if self.qdiscs and self.qdiscs[0].stats.root else None

    @property
    def root_kind(self) -> str:
        """'noqueue', 'mq', 'tbf'...; '' when none was read (a recording from before netscope
        read qdiscs)."""
        return self.root.stats.kind if self.root else ""

    @property
    def qdisc_drops(self) -> int:
        """Dropped by its qdiscs in the interval: the root's (a classful or multiqueue root sums
        its children's), and a clsact's (egress filters)."""
        return sum(q.stats.drops for q in self.qdiscs if q.stats.root or q.stats.kind == "clsact")

    @property
    def queued(self) -> tuple[int, int]:
        """(packets, bytes) its root qdisc holds at the read."""
        root = self.root
        return (root.stats.qlen, root.stats.backlog) if root else (0, 0)


@dataclass(frozen=True)
class TxView:
    interval_s: float
    devices: tuple[TxDevice, ...]  # the busiest first
    reasons: tuple[tuple[str, int], ...] | None  # the way out's drop reasons, all devices (None: not known)
    live: bool  # the devices' counters were read for this interval
    out_requests: int | None = None  # what IP took from sockets to send (None: not read)
    send_losses: tuple[tuple[str, int], ...] = ()  # ("Udp SndbufErrors", n)... non-zero only

    def per_s(self, count: int) -> float:
        return count / self.interval_s if self.interval_s > 0 else 0.0

    @property
    def qdisc_packets(self) -> int:
        """What the root qdiscs sent (noqueue devices send without one)."""
        return sum(d.root.stats.packets for d in self.devices if d.root and d.root.stats.kind != "noqueue")

    @property
    def qdisc_drops(self) -> int:
        return sum(d.qdisc_drops for d in self.devices)

    @property
    def tx_packets(self) -> int:
        return sum(d.tx_packets for d in self.devices)

    @property
    def tx_dropped(self) -> int:
        return sum(d.tx_dropped for d in self.devices)


def _device(
    d: DeviceRow,
    stats: DeviceStats,
    reasons: Mapping[str, int],
    dt: float,
    waits: Sequence[tuple[int, int]] | None,
) -> TxDevice:
    bql = {q: (inflight, limit) for q, inflight, limit in stats.bql}
    queues = tuple(
        TxQueueRow(
            q.queue,
            q.tx_pps,
            q.tx_bps,
            q.tx_packets,
            q.tx_bytes,
            q.estimated,
            bql.get(q.queue, (None, None))[0],
            bql.get(q.queue, (None, None))[1],
        )
        for q in d.queues
        if q.queue >= 0 and (q.tx_packets or q.queue in bql or q.queue < max(stats.tx_queues, 1))
    )
    return TxDevice(
        netns=d.netns,
        ifindex=d.ifindex,
        label=d.label,
        ifname=d.ifname,
        kind=stats.kind,
        tx_pps=d.tx_pps,
        tx_bps=d.tx_bps,
        tx_packets=stats.tx_packets,
        tx_bytes=stats.tx_bytes or 0,
        tx_dropped=stats.tx_dropped,
        txqueuelen=stats.txqueuelen,
        qdiscs=tuple(QdiscRow(q, dt) for q in stats.qdiscs),
        queues=queues,
        reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        interval_s=dt,
        wait=Percentiles.of(waits, PROC_BITS, 0, None) if waits else None,
    )


def build_tx_view(sample: Sample, rings: RingsView) -> TxView:
    """Every device the Rings view lists (narrowed by --interface and --netns there) whose counters
    were read, with its qdiscs, TX queues and drop reasons."""
    known = sample.drops is not None and not sample.drops.unbucketed
    by_device = (
        reasons_by(sample.drops, lambda b: (b.netns, b.ifindex), lambda name: name in TX_REASONS)
        if sample.drops is not None
        else {}
    )
    stats = {(d.netns, d.ifindex): d for d in sample.devices}
    waits = {(w.netns, w.ifindex): w.buckets for w in sample.qdisc_wait or ()}
    rate = rate_of(sample, "qdisc")
    devices = [
        replace(
            _device(d, stats[key], by_device.get(key, {}), rings.interval_s, waits.get(key)), wait_rate=rate
        )
        for d in rings.devices
        if (key := (d.netns, d.ifindex)) in stats
    ]
    devices.sort(key=lambda d: (-d.tx_pps, -d.qdisc_drops, d.label))
    totals: dict[str, int] = {}
    for reasons in by_device.values():
        for name, n in reasons.items():
            totals[name] = totals.get(name, 0) + n
    counts: dict[tuple[str, str], int] = {}
    for ns in sample.netns_snmp:
        for c in ns.counts:
            counts[(c.group, c.name)] = counts.get((c.group, c.name), 0) + c.count
    read = any(k in counts for k in IP_OUT_REQUESTS)
    return TxView(
        rings.interval_s,
        tuple(devices),
        tuple(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))) if known else None,
        rings.live,
        sum(counts.get(k, 0) for k in IP_OUT_REQUESTS) if read else None,
        tuple((f"{g} {n}", counts[(g, n)]) for g, n in SEND_LOSSES if counts.get((g, n))),
    )
