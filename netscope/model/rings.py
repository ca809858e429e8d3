"""The Rings view: per device and queue, RX/TX rates, ring sizes, NAPI pressure, BQL, overruns. Pure.

Counters first: a device's packets and bytes are its own (stats64), a queue's are the driver's
per-queue counters (the netdev family's qstats) where it keeps them, or the device's for a device
with one queue each way; only the other queues are split by the rings probe's hooks, from a sample
(`estimated`).

No counter tells how full an RX ring is. The honest estimate is NAPI's: a poll that used its whole
budget left packets in the ring, so the share of full-budget polls, how deep polls ran (histogram)
and how long full-budget runs lasted say how close the ring runs to full.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from netscope.model.drops import device_label
from netscope.model.sample import (
    DEVICES,
    DeviceStats,
    HostInfo,
    NapiInstance,
    QueueCount,
    Sample,
    rate_of,
    span_s,
)

# The per-queue counters (netdev qstats) of packets lost before the stack, as the kernel names them.
QSTATS_LOSSES = ("rx-alloc-fail", "rx-hw-drops", "rx-hw-drop-overruns")
WORK_BUCKETS = ("0", "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64+")
STREAK_BUCKETS = ("1", "2-3", "4-7", "8+")
PRESSURE_NOTE = (
    "ring pressure = share of NAPI polls that used their whole budget: the ring still held packets "
    "when the poll stopped. Near 0: the ring drains each poll; rising with long streaks: the CPU "
    "cannot keep up and the ring runs full (then rx_missed/over count what it lost)."
)


@dataclass(frozen=True)
class Pressure:
    polls: int
    packets: int
    budget_exhausted: int
    work_hist: tuple[int, ...]
    streak_hist: tuple[int, ...]
    rate: int = 1  # 1 in N polls counted: > 1, polls, packets, full-budget share and depths are estimates

    @property
    def full_pct(self) -> float | None:
        return 100.0 * self.budget_exhausted / self.polls if self.polls else None

    @property
    def packets_per_poll(self) -> float | None:
        return self.packets / self.polls if self.polls else None

    @property
    def longest_streak(self) -> str:
        """The longest bucket of full-budget runs seen: '' when none ended."""
        return next(
            (STREAK_BUCKETS[i] for i in reversed(range(len(self.streak_hist))) if self.streak_hist[i]), ""
        )


def pressure(instances: Collection[NapiInstance], rate: int = 1) -> Pressure:
    """NAPI figures of several instances (or one) together."""
    return Pressure(
        rate=rate,
        polls=sum(sum(n.polls) for n in instances),
        packets=sum(sum(n.packets) for n in instances),
        budget_exhausted=sum(sum(n.budget_exhausted) for n in instances),
        work_hist=tuple(sum(col) for col in zip(*(n.work_hist for n in instances), strict=True))
        if instances
        else (0,) * len(WORK_BUCKETS),
        streak_hist=tuple(sum(col) for col in zip(*(n.streak_hist for n in instances), strict=True))
        if instances
        else (0,) * len(STREAK_BUCKETS),
    )


@dataclass(frozen=True)
class QueueRow:
    queue: int  # -1: not recorded by the driver
    rx_pps: float
    rx_bps: float  # bytes per second
    tx_pps: float
    tx_bps: float
    bql_inflight: int | None
    bql_limit: int | None
    rx_packets: int  # in the interval
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    napi_id: int | None  # the NAPI instance serving this RX queue (netdev genl), when known
    qstats: tuple[tuple[str, int], ...]  # the driver's per-queue counters (rx side), per interval
    estimated: bool = False  # its rates come from a sample of the rings probe's hooks

    @property
    def label(self) -> str:
        return "?" if self.queue < 0 else str(self.queue)


@dataclass(frozen=True)
class NapiRow:
    napi_id: int
    pressure: Pressure
    polls_per_cpu: tuple[int, ...]


@dataclass(frozen=True)
class DeviceRow:
    netns: int
    ifindex: int
    label: str  # name, @namespace when not netscope's own
    ifname: str
    driver: str
    rx_pps: float
    rx_bps: float
    tx_pps: float
    tx_bps: float
    stats: DeviceStats | None  # None: netlink could not read it (its namespace has no path)
    queues: tuple[QueueRow, ...]
    napi: tuple[NapiRow, ...]
    pressure: Pressure

    def napi_for(self, queue: QueueRow) -> NapiRow | None:
        """The NAPI instance of an RX queue: the driver's map, else a device's only instance on its
        first receiving queue."""
        if queue.napi_id is not None:
            return next((n for n in self.napi if n.napi_id == queue.napi_id), None)
        if len(self.napi) != 1 or any(q.napi_id is not None for q in self.queues):
            return None
        first = next(
            (q.queue for q in self.queues if q.rx_packets), self.queues[0].queue if self.queues else None
        )
        return self.napi[0] if queue.queue == first else None

    @property
    def lost_per_interval(self) -> int:
        """Losses before the stack: ring overruns, missed, FIFO, dropped by the driver."""
        s = self.stats
        return s.rx_missed + s.rx_over + s.rx_fifo + s.rx_dropped if s else 0


@dataclass(frozen=True)
class RingsView:
    interval_s: float
    devices: tuple[DeviceRow, ...]  # busiest first
    backlog: NapiRow | None  # the per-CPU backlog (veth without NAPI, loopback)
    live: bool  # the devices' counters (or the rings probe) were read for this interval


Rates = dict[str, int]  # rx_p, rx_b, tx_p, tx_b over the interval


def _counted_queues(stats: DeviceStats | None) -> dict[int, Rates]:
    """Packets and bytes per queue the kernel counts itself: the driver's qstats, or the device's
    own totals for a device with a single queue each way."""
    out: dict[int, Rates] = {}
    if stats is None:
        return out
    names = {"rx-packets": "rx_p", "rx-bytes": "rx_b", "tx-packets": "tx_p", "tx-bytes": "tx_b"}
    for _, q, counter, value in stats.qstats:
        if counter in names:
            out.setdefault(q, {"rx_p": 0, "rx_b": 0, "tx_p": 0, "tx_b": 0})[names[counter]] += value
    if not out and stats.rx_queues == 1 and stats.tx_queues == 1 and stats.rx_bytes is not None:
        out[0] = {
            "rx_p": stats.rx_packets,
            "rx_b": stats.rx_bytes,
            "tx_p": stats.tx_packets,
            "tx_b": stats.tx_bytes or 0,
        }
    return out


def _queue_rows(
    counts: list[QueueCount], stats: DeviceStats | None, dt: float, rate: int
) -> tuple[QueueRow, ...]:
    counted = _counted_queues(stats)
    hooked: dict[int, Rates] = {}
    for c in counts:
        row = hooked.setdefault(c.queue, {"rx_p": 0, "rx_b": 0, "tx_p": 0, "tx_b": 0})
        prefix = "tx" if c.tx else "rx"
        row[f"{prefix}_p"] += c.packets
        row[f"{prefix}_b"] += c.bytes
    if not counted and rate > 1 and stats is not None and stats.rx_bytes is not None:
        hooked = _split(hooked, stats)
    by_queue = dict(counted or hooked)
    bql = {q: (inflight, limit) for q, inflight, limit in stats.bql} if stats else {}
    napi_of = {q: n for kind, q, n in stats.queue_napi if kind == "rx"} if stats else {}
    qstats: dict[int, list[tuple[str, int]]] = {}
    for kind, q, counter, value in stats.qstats if stats else ():
        if kind == "rx":
            qstats.setdefault(q, []).append((counter, value))
    for q in (*bql, *napi_of):
        by_queue.setdefault(q, {"rx_p": 0, "rx_b": 0, "tx_p": 0, "tx_b": 0})
    return tuple(
        QueueRow(
            queue=q,
            rx_pps=v["rx_p"] / dt,
            rx_bps=v["rx_b"] / dt,
            tx_pps=v["tx_p"] / dt,
            tx_bps=v["tx_b"] / dt,
            bql_inflight=bql[q][0] if q in bql else None,
            bql_limit=bql[q][1] if q in bql else None,
            rx_packets=v["rx_p"],
            rx_bytes=v["rx_b"],
            tx_packets=v["tx_p"],
            tx_bytes=v["tx_b"],
            napi_id=napi_of.get(q),
            qstats=tuple(qstats.get(q, ())),
            estimated=not counted and q in hooked and rate > 1,
        )
        for q, v in sorted(by_queue.items())
    )


def _split(hooked: dict[int, Rates], stats: DeviceStats) -> dict[int, Rates]:
    """The device's own counts split over its queues as the hooks' sample shares them: the sample
    (attached for part of the interval, 1 run in N) tells the shares; the totals are the kernel's."""
    totals = {
        "rx_p": stats.rx_packets,
        "rx_b": stats.rx_bytes or 0,
        "tx_p": stats.tx_packets,
        "tx_b": stats.tx_bytes or 0,
    }
    out = {q: dict(v) for q, v in hooked.items()}
    for name, total in totals.items():
        seen = sum(v[name] for v in hooked.values())
        if seen:
            for q, v in hooked.items():
                out[q][name] = round(total * v[name] / seen)
    return out


def _hooked(counts: list[QueueCount], tx: bool) -> tuple[int, int]:
    """Packets and bytes of one direction, as the rings probe's hooks counted them."""
    return sum(c.packets for c in counts if c.tx == tx), sum(c.bytes for c in counts if c.tx == tx)


def _wanted(
    name: str, netns: int, netns_name: str, interfaces: Collection[str], netns_filter: str | None
) -> bool:
    if interfaces and name not in interfaces:
        return False
    return netns_filter is None or netns_filter in (netns_name, str(netns))


def build_rings_view(
    sample: Sample,
    info: HostInfo,
    interfaces: Collection[str] = (),
    netns: str | None = None,
) -> RingsView:
    """Devices and their queues; `interfaces` and `netns` (a name or inode) narrow the list. Rates
    divide by the time the devices' counters span (more than the interval after a failed read)."""
    dt = span_s(sample, DEVICES)
    names: Mapping[int, str] = dict(sample.netns_names)
    stats = {(d.netns, d.ifindex): d for d in sample.devices}
    counts: dict[tuple[int, int], list[QueueCount]] = {}
    for c in sample.queues or ():
        counts.setdefault((c.netns, c.ifindex), []).append(c)
    napi: dict[tuple[int, int], list[NapiInstance]] = {}
    backlog = None
    rate, napi_rate = rate_of(sample, "rings"), rate_of(sample, "napi")
    for n in sample.napi or ():
        if n.ifindex == 0:
            backlog = NapiRow(0, pressure([n], napi_rate), n.polls)
        else:
            napi.setdefault((n.netns, n.ifindex), []).append(n)
    rows = []
    for key in sorted(set(stats) | set(counts) | set(napi)):
        d = stats.get(key)
        dev_counts = counts.get(key, [])
        dev_napi = napi.get(key, [])
        ifname = d.ifname if d else dev_counts[0].ifname if dev_counts else dev_napi[0].ifname
        netns_inode = key[0]
        if not _wanted(ifname, netns_inode, names.get(netns_inode, ""), interfaces, netns):
            continue
        # The device's own counters; the hooks' sample for one whose counters were not read.
        if d is not None and d.rx_bytes is not None:
            rx, tx = (d.rx_packets, d.rx_bytes), (d.tx_packets, d.tx_bytes or 0)
        else:
            rx, tx = _hooked(dev_counts, tx=False), _hooked(dev_counts, tx=True)
        rows.append(
            DeviceRow(
                netns=netns_inode,
                ifindex=key[1],
                label=device_label(ifname, netns_inode, info.netns, names),
                ifname=ifname,
                driver=d.driver if d else "",
                rx_pps=rx[0] / dt,
                rx_bps=rx[1] / dt,
                tx_pps=tx[0] / dt,
                tx_bps=tx[1] / dt,
                stats=d,
                queues=_queue_rows(dev_counts, d, dt, rate),
                napi=tuple(NapiRow(i.napi_id, pressure([i], napi_rate), i.polls) for i in dev_napi),
                pressure=pressure(dev_napi, napi_rate),
            )
        )
    rows.sort(key=lambda r: (-(r.rx_pps + r.tx_pps), -r.lost_per_interval, r.label))
    return RingsView(dt, tuple(rows), backlog, bool(sample.devices) or sample.queues is not None)


def known_interfaces(sample: Sample, info: HostInfo) -> dict[str, set[str]]:
    """Device names a sample knows of -> the namespaces holding one ("" for netscope's own)."""
    names = dict(sample.netns_names)
    found: dict[str, set[str]] = {}
    for netns, ifname in [(d.netns, d.ifname) for d in sample.devices] + [
        (q.netns, q.ifname) for q in sample.queues or ()
    ]:
        found.setdefault(ifname, set()).add("" if netns == info.netns else names.get(netns, str(netns)))
    return found
