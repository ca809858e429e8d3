"""Stage balance: for each receive stage of each network namespace, what came in, what went out,
what was lost and why, and what no counter accounts for (`unaccounted = in - out - lost`).

Pure. Every figure is one of the kernel's own counters, read at the interval's boundary: stats64 of
the namespace's devices and that namespace's /proc/net/snmp, netstat and snmp6 (read in the same
pass into the namespace, so the two sides of a boundary are microseconds apart), softnet_stat per
CPU, and the drop reasons (NETFILTER_DROP, which no snmp counter names). The stages, and where their
boundaries sit (README "Stage balance"):

- `device`: what the devices took in (stats64 rx_packets plus what the NIC counted as missed,
  overrun or fifo) against what reached IP (Ip and Ip6 InReceives). Lost: rx_missed, rx_over,
  rx_fifo, rx_dropped (the core's: a full backlog, no protocol handler) and netfilter drops at
  netdev ingress. veth and loopback count rx_packets only for a packet the stack took, so there a
  core drop is added to what came in. A NIC counts wire packets and GRO merges them into fewer
  skbs before IP counts them (no counter says how many): a namespace where a NIC with GRO on (or
  one that does not say), or a veth with GRO on, received is shown, not checked. A bridge or bond
  port is left out (its packets show again on its master), and so is what is not IP (ARP): a few
  frames an interval, within the noise.
- `ip`: InReceives against InDelivers plus forwarded (ForwDatagrams, Ip6 OutForwDatagrams) plus
  fragments merged into a datagram (ReasmReqds - ReasmOKs). Lost: the Ip/Ip6 In* error counters
  and netfilter drops at prerouting or input.
- `transport`: InDelivers against TCP InSegs, ICMP InMsgs and UDP InDatagrams. UDP counts a
  datagram when the application reads it, so a socket's queue filling or draining moves this
  stage's unaccounted either way, as does a protocol with no counter of its own (SCTP, GRE, raw):
  it is shown, and never called a silent loss.
- `backlog` (host-wide, netns 0): softnet's processed and dropped per CPU summed; its loss is the
  backlog's, and it has nothing to reconcile.
- `socket` (host-wide, from the copy-latency probe's hooks): what reached the sockets netscope
  follows (the data queued on them, plus the socket drop reasons: SOCKET_RCVBUFF, SOCKET_BACKLOG,
  PROTO_MEM) against what user space copied out (reads). A socket's queue sits between the two, and
  for TCP an arrival is a wake-up with new data and a read one recvmsg: shown, never checked, and
  marked as estimated while the hooks are sampled.
- `tx` (per namespace, the way out): what IP handed to the devices (Ip and Ip6 OutTransmits: after
  netfilter's POSTROUTING and fragmentation) against what the devices sent (stats64 tx_packets; a
  bridge or bond port left out). Lost: the root qdiscs' drops, the devices' tx_dropped, and the
  neighbour layer's drop reasons (NEIGH_*: no ARP or ND answer, its queue full). What stands in
  the root qdiscs at the read (their qlen) may have come in this interval: it adds to the noise
  (a queue that shrank sends more than came in: never a loss). ARP is not IP:
  a few frames out more than in, never a loss. A device that segments GSO packets itself sends
  more than IP counted: also never a loss.

The same drop reason at two stages (NETFILTER_DROP at netdev ingress and at IP) is told apart by
the counters on either side: the device stage takes as many as its own counters leave unexplained
(when that is more than the few non-IP frames of NOISE_FLOOR), the IP stage the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from netscope.model.drops import reasons_by
from netscope.model.sample import DeviceStats, Sample
from netscope.model.tx import SEND_COUNTERS

# Devices that hand packets to the stack through netif_rx: their rx_packets counts only what the
# backlog took (a packet the core dropped on the way in is in rx_dropped alone). A NIC's driver
# counts rx_packets on the wire, and where GRO is on it merges them into fewer skbs before IP
# counts InReceives (no counter says how many): there the device stage is shown but not checked.
# veth with GRO on (`ethtool -K gro on`) delivers through a NAPI instance of its own and merges too.
SOFTWARE_RX = frozenset({"veth", "loopback"})


def may_merge(d: DeviceStats) -> bool:
    """Whether GRO may have merged what the device received: a NIC's GRO on or not said, a veth's
    on (loopback says on, and never merges: it has no NAPI instance)."""
    if d.kind == "loopback":
        return False
    if d.kind == "veth":
        return bool(d.gro)
    return d.gro is not False


# Noise: the devices and the namespace's snmp counters are read together, and how far IP's counters
# moved meanwhile is measured (NetnsSnmp.read_skew); the drop reasons are read with the probes, a
# little apart: a steady rate moves a balance by its rate times this; plus a few frames an
# interval that reach no IP counter (ARP).
READ_SKEW_S = 0.005
NOISE_FLOOR = 8
NETFILTER_DROP = "NETFILTER_DROP"
HOST = 0  # the netns of the host-wide stages
# The counters on either side of each stage, as a finding names them.
BOUNDARIES = {
    "backlog": ("softnet processed + dropped", "softnet processed"),
    "device": ("stats64 rx_packets (+ rx_missed, rx_over, rx_fifo)", "Ip/Ip6 InReceives"),
    "ip": ("Ip/Ip6 InReceives", "Ip/Ip6 InDelivers + forwarded"),
    "transport": ("Ip/Ip6 InDelivers", "Tcp InSegs + Udp/Udp6 InDatagrams (read) + Icmp/Icmp6 InMsgs"),
    "socket": ("data queued on sockets + socket drops", "reads"),
    "tx": ("Ip/Ip6 OutTransmits", "stats64 tx_packets"),
}
SOCKET_REASONS = ("SOCKET_RCVBUFF", "SOCKET_BACKLOG", "PROTO_MEM")  # drop reasons of the socket stage

# The counters the balance reads, per namespace: (group, name) as /proc/net/snmp, netstat and snmp6
# spell them.
IP_IN = (("Ip", "InReceives"), ("Ip6", "InReceives"))
IP_TRANSMITS = (("Ip", "OutTransmits"), ("Ip6", "OutTransmits"))  # Linux 6.3+: IP to the devices
# Read right before and after a namespace's devices: how far the two edges of IP moved meanwhile.
IP_EDGES = IP_IN + IP_TRANSMITS
IP_OUT = (("Ip", "InDelivers"), ("Ip6", "InDelivers"), ("Ip", "ForwDatagrams"), ("Ip6", "OutForwDatagrams"))
IP_REASSEMBLY = (("Ip", "ReasmReqds"), ("Ip", "ReasmOKs"), ("Ip6", "ReasmReqds"), ("Ip6", "ReasmOKs"))
IP_LOST = (
    ("Ip", "InHdrErrors"),  # InCsumErrors is counted here too
    ("Ip", "InAddrErrors"),
    ("Ip", "InUnknownProtos"),
    ("Ip", "InDiscards"),
    ("Ip", "ReasmFails"),
    ("IpExt", "InNoRoutes"),
    ("IpExt", "InTruncatedPkts"),
    ("Ip6", "InHdrErrors"),
    ("Ip6", "InAddrErrors"),
    ("Ip6", "InUnknownProtos"),
    ("Ip6", "InDiscards"),
    ("Ip6", "InNoRoutes"),
    ("Ip6", "InTruncatedPkts"),
    ("Ip6", "ReasmFails"),
)
TRANSPORT_OUT = (
    ("Tcp", "InSegs"),
    ("Udp", "InDatagrams"),
    ("Udp6", "InDatagrams"),
    ("Icmp", "InMsgs"),
    ("Icmp6", "InMsgs"),
)
UDP_GROUPS = ("Udp", "Udp6")
# UDP's InErrors counts RcvbufErrors, MemErrors and InCsumErrors too: those are named, InErrors
# keeps the rest.
UDP_LOST = ("NoPorts", "RcvbufErrors", "MemErrors", "InErrors")
BALANCE_COUNTERS = frozenset(
    (
        *IP_EDGES,
        *IP_OUT,
        *IP_REASSEMBLY,
        *IP_LOST,
        *TRANSPORT_OUT,
        *((g, n) for g in UDP_GROUPS for n in UDP_LOST),
        *SEND_COUNTERS,  # the TX view's socket send stage (model/tx.py)
    )
)


@dataclass(frozen=True)
class StageBalance:
    """One stage over one interval (or summed over several)."""

    netns: int  # inode; HOST for the host-wide stages
    stage: str  # device, ip, transport, backlog
    in_: int
    out: int
    lost: tuple[tuple[str, int], ...]  # (cause, count): the counters that name a loss, non-zero
    noise: int  # |unaccounted| up to this is the counters' read skew, not a loss
    checked: bool = True  # False: the stage's out is not a count of packets that left it (transport)
    estimated: bool = False  # from hooks that sampled (the socket stage's): ~, never checked

    @property
    def lost_total(self) -> int:
        return sum(n for _, n in self.lost)

    @property
    def unaccounted(self) -> int:
        return self.in_ - self.out - self.lost_total

    @property
    def beyond_noise(self) -> int:
        """Unaccounted past the noise in a checked stage (0 when within it): a silent loss once the
        next interval does not give it back (`confirm_silent`)."""
        return self.unaccounted if self.checked and self.unaccounted > self.noise else 0

    def __add__(self, other: StageBalance) -> StageBalance:
        lost: dict[str, int] = dict(self.lost)
        for cause, n in other.lost:
            lost[cause] = lost.get(cause, 0) + n
        return StageBalance(
            self.netns,
            self.stage,
            self.in_ + other.in_,
            self.out + other.out,
            tuple(sorted(lost.items())),
            self.noise + other.noise,
            self.checked and other.checked,
            self.estimated or other.estimated,
        )


def noise(in_: int, interval_s: float, read_skew: int = 0) -> int:
    """What read skew may leave unaccounted: the packets IP counted while the namespace's devices
    were read (`read_skew`, at both ends of the interval), the rate times READ_SKEW_S (the drop
    reasons are read apart from both), and the frames no IP counter sees."""
    return read_skew + math.ceil(in_ / max(interval_s, 1e-3) * READ_SKEW_S) + NOISE_FLOOR


def _sum(counts: Mapping[tuple[str, str], int], keys: Iterable[tuple[str, str]]) -> int:
    return sum(counts.get(k, 0) for k in keys)


def _named(pairs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple((cause, n) for cause, n in pairs if n)


def netns_balance(
    netns: int,
    devices: Iterable[DeviceStats],
    counts: Mapping[tuple[str, str], int],
    netfilter_drops: int | None,
    interval_s: float,
    read_skew: int = 0,
    neigh_drops: Mapping[str, int] | None = None,
) -> tuple[StageBalance, ...]:
    """The device, ip, transport and tx stages of one namespace over one interval: its devices'
    stats64, its snmp counters (`counts`, per interval) and the netfilter and neighbour drops the
    drop reasons counted there (None: not known, the drop reasons unwatched: then the device, ip
    and tx stages are not checked, since such a drop would look like a silent loss)."""
    known = netfilter_drops is not None
    netfilter_drops = netfilter_drops or 0
    ports_left_out = [d for d in devices if not d.master]
    hw = {
        "rx_missed": sum(d.rx_missed for d in ports_left_out),
        "rx_over": sum(d.rx_over for d in ports_left_out),
        "rx_fifo": sum(d.rx_fifo for d in ports_left_out),
        "rx_dropped": sum(d.rx_dropped for d in ports_left_out),
    }
    taken = sum(
        d.rx_packets + (d.rx_dropped if d.kind in SOFTWARE_RX and not may_merge(d) else 0)
        for d in ports_left_out
    )
    dev_in = taken + hw["rx_missed"] + hw["rx_over"] + hw["rx_fifo"]
    ip_in = _sum(counts, IP_IN)
    # Netfilter drops: the device stage takes what its own counters leave unexplained, IP the rest;
    # a gap within the frames that reach no IP counter (ARP) is theirs, not netfilter's, and so is
    # the gap GRO leaves where it merged (the device stage is not checked then).
    gro_merged = any(d.rx_packets for d in ports_left_out if may_merge(d))
    dev_gap = dev_in - ip_in - sum(hw.values())
    nf_device = min(netfilter_drops, dev_gap) if dev_gap > NOISE_FLOOR and not gro_merged else 0
    device = StageBalance(
        netns,
        "device",
        dev_in,
        ip_in,
        _named([*hw.items(), (NETFILTER_DROP, nf_device)]),
        noise(dev_in, interval_s, read_skew),
        known and not gro_merged,
    )
    reassembled = max(0, _sum(counts, IP_REASSEMBLY[0::2]) - _sum(counts, IP_REASSEMBLY[1::2]))
    ip_out = _sum(counts, IP_OUT) + reassembled
    ip_lost = [(f"{g} {n}", counts.get((g, n), 0)) for g, n in IP_LOST]
    ip = StageBalance(
        netns,
        "ip",
        ip_in,
        ip_out,
        _named([*ip_lost, (NETFILTER_DROP, netfilter_drops - nf_device)]),
        noise(ip_in, interval_s, read_skew),
        known,
    )
    delivered = _sum(counts, IP_OUT[:2])
    udp_lost = []
    for g in UDP_GROUPS:
        named = {n: counts.get((g, n), 0) for n in UDP_LOST}
        named["InErrors"] = max(0, named["InErrors"] - named["RcvbufErrors"] - named["MemErrors"])
        udp_lost += [(f"{g} {n}", v) for n, v in named.items()]
    transport = StageBalance(
        netns,
        "transport",
        delivered,
        _sum(counts, TRANSPORT_OUT),
        _named(udp_lost),
        noise(delivered, interval_s, read_skew),
        checked=False,
    )
    tx = tx_balance(netns, ports_left_out, counts, neigh_drops, interval_s, read_skew)
    return (device, ip, transport) + ((tx,) if tx is not None else ())


def tx_balance(
    netns: int,
    devices: Iterable[DeviceStats],
    counts: Mapping[tuple[str, str], int],
    neigh_drops: Mapping[str, int] | None,
    interval_s: float,
    read_skew: int = 0,
) -> StageBalance | None:
    """The way out of one namespace: what IP handed to its devices (OutTransmits: Linux 6.3+; None
    before, or in a recording made before netscope read it) against what they sent; lost at the
    qdiscs, in the devices, in the neighbour layer (its drop reasons: None when not known, and the
    stage is not checked then)."""
    if not any(k in counts for k in IP_TRANSMITS):
        return None
    devices = list(devices)
    handed = _sum(counts, IP_TRANSMITS)
    lost = [
        ("qdisc drops", sum(d.qdisc_drops or 0 for d in devices)),
        ("tx_dropped", sum(d.tx_dropped for d in devices)),
        *sorted((neigh_drops or {}).items()),
    ]
    return StageBalance(
        netns,
        "tx",
        handed,
        sum(d.tx_packets for d in devices),
        _named(lost),
        # What stands in the qdiscs at the read may be this interval's (a queue that grew).
        noise(handed, interval_s, read_skew) + sum(d.qdisc_qlen for d in devices),
        neigh_drops is not None,
    )


def socket_balance(sample: Sample) -> StageBalance | None:
    """The host's sockets, from the copy-latency probe (None when it did not report): data queued
    on them and the socket drop reasons against the reads that copied data out. Never checked."""
    latency = sample.latency
    if latency is None or latency.arrivals is None:
        return None
    by_name: dict[str, int] = {}
    for reasons in (_reasons_by_netns(sample, lambda name: name in SOCKET_REASONS) or {}).values():
        for name, n in reasons.items():
            by_name[name] = by_name.get(name, 0) + n
    lost = _named(sorted(by_name.items()))
    arrived = latency.arrivals + sum(n for _, n in lost)
    rate = next((p.sample_rate for p in sample.probes if p.name == "latency"), 1)
    return StageBalance(
        HOST,
        "socket",
        arrived,
        sum(p.reads for p in latency.processes),
        lost,
        noise(arrived, sample.interval_s),
        checked=False,
        estimated=rate > 1 or latency.reads_watched < 1.0,
    )


def backlog_balance(sample: Sample) -> StageBalance:
    """The host's backlog/NAPI stage: softnet's processed and dropped over all CPUs."""
    processed = sum(s.processed for s in sample.softnet)
    dropped = sum(s.dropped for s in sample.softnet)
    return StageBalance(
        HOST,
        "backlog",
        processed + dropped,
        processed,
        _named([("softnet dropped", dropped)]),
        noise(processed + dropped, sample.interval_s),
    )


def build_balance(sample: Sample) -> tuple[StageBalance, ...]:
    """Every stage of the interval: the host's backlog, then each namespace whose snmp counters were
    read with its devices (those carrying traffic, and netscope's own)."""
    out = [backlog_balance(sample)] if sample.softnet else []
    sockets = socket_balance(sample)
    out += [sockets] if sockets is not None else []
    netfilter = _reasons_by_netns(sample, lambda name: name == NETFILTER_DROP)
    neigh = _reasons_by_netns(sample, lambda name: name.startswith("NEIGH_"))
    for ns in sample.netns_snmp:
        devices = [d for d in sample.devices if d.netns == ns.netns]
        counts = {(c.group, c.name): c.count for c in ns.counts}
        nf = None if netfilter is None else sum(netfilter.get(ns.netns, {}).values())
        ng = None if neigh is None else neigh.get(ns.netns, {})
        out.extend(netns_balance(ns.netns, devices, counts, nf, sample.interval_s, ns.read_skew, ng))
    return tuple(out)


def _reasons_by_netns(sample: Sample, wanted: Callable[[str], bool]) -> dict[int, dict[str, int]] | None:
    """The drops of the reasons `wanted` per namespace and reason, from the drop reasons' breakdown;
    None when not known (no drops probe, or its breakdown map was full)."""
    if sample.drops is None or sample.drops.unbucketed:
        return None
    return reasons_by(sample.drops, lambda b: b.netns, wanted)


def confirm_silent(
    previous: Iterable[StageBalance], latest: Iterable[StageBalance], earlier: Iterable[StageBalance] = ()
) -> tuple[StageBalance, ...]:
    """The previous interval's stages whose unaccounted passed the noise and that the latest
    interval did not give back: summed over both, it is still past their noise. A count read on
    the other side of a boundary a moment late (a burst of drops between the drop reasons' read and
    the namespace's) shows as +n in one interval and -n in the next, and is not a loss."""
    now = {(r.netns, r.stage): r for r in latest}
    before = {(r.netns, r.stage): r for r in earlier}
    out = []
    for row in previous:
        later = now.get((row.netns, row.stage))
        prior = before.get((row.netns, row.stage))
        # The boundary before it may be the skewed one: -n read in the interval before, +n in it.
        given_before = prior is not None and not (prior + row).beyond_noise
        if row.beyond_noise and later is not None and (row + later).beyond_noise and not given_before:
            out.append(row)
    return tuple(out)


class BalanceLedger:
    """The stage balance interval after interval, for whoever reports silent losses (the timeline's
    findings and home screen, the export's counters): each interval's rows, and the previous
    interval's silent losses this one confirmed (`confirm_silent`)."""

    def __init__(self) -> None:
        self._previous: tuple[StageBalance, ...] = ()
        self._earlier: tuple[StageBalance, ...] = ()

    def add(self, sample: Sample) -> tuple[tuple[StageBalance, ...], tuple[StageBalance, ...]]:
        """(the interval's rows, the previous interval's confirmed silent losses)."""
        rows = build_balance(sample)
        silent = confirm_silent(self._previous, rows, self._earlier)
        self._earlier, self._previous = self._previous, rows
        return rows, silent


def sum_balances(rows: Iterable[StageBalance]) -> tuple[StageBalance, ...]:
    """Rows of several intervals summed per (netns, stage), in first-seen order."""
    total: dict[tuple[int, str], StageBalance] = {}
    for row in rows:
        key = (row.netns, row.stage)
        total[key] = total[key] + row if key in total else row
    return tuple(total.values())
