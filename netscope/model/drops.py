"""Drops: reason names decoded from the running kernel's own tables, and the per-second view. Pure."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from netscope.model.sample import DropBucket, DropEvent, DropsSample, HostInfo, Sample

K = TypeVar("K", bound=Hashable)

SUBSYS_SHIFT = 16  # SKB_DROP_REASON_SUBSYS_SHIFT


@dataclass(frozen=True)
class ReasonNames:
    """The kernel's names: core reasons, subsystem ids, and subsystem reasons (full values)."""

    core: Mapping[int, str]
    subsystems: Mapping[int, str]
    subsystem_reasons: Mapping[int, str]

    def decode(self, reason: int) -> tuple[str, str]:
        """(subsystem, name); the subsystem is "" for core reasons."""
        subsys = reason >> SUBSYS_SHIFT
        if subsys == 0:
            return "", self.core.get(reason, f"reason {reason}")
        subsystem = self.subsystems.get(subsys, f"subsystem {subsys}")
        return subsystem, self.subsystem_reasons.get(reason, f"reason {reason & 0xFFFF}")

    def label(self, reason: int) -> str:
        """The reason as shown: NO_SOCKET, or SUBSYSTEM/REASON."""
        return reason_label(*self.decode(reason))


_SYMBOLIC = re.compile(r"__print_symbolic\(REC->reason,(.*)\)", re.S)
_PAIR = re.compile(r"\{\s*(-?\d+|0x[0-9a-fA-F]+)\s*,\s*\"([^\"]*)\"\s*\}")


def parse_format_reasons(format_text: str) -> dict[int, str]:
    """Reason names from a tracefs `events/skb/kfree_skb/format` file's __print_symbolic."""
    m = _SYMBOLIC.search(format_text)
    if not m:
        return {}
    return {int(v, 0): name for v, name in _PAIR.findall(m.group(1))}


def names_from_enums(enums: Mapping[str, Mapping[str, int]]) -> ReasonNames:
    """Reason names from BTF enums: `skb_drop_reason`, `skb_drop_reason_subsys` and any subsystem's
    own `*_drop_reason` enum (values carry the subsystem id in their high bits)."""
    core = {v: n.removeprefix("SKB_DROP_REASON_") for n, v in enums.get("skb_drop_reason", {}).items()}
    subsystems = {
        v: n.removeprefix("SKB_DROP_REASON_SUBSYS_")
        for n, v in enums.get("skb_drop_reason_subsys", {}).items()
        if not n.endswith("_NUM")
    }
    sub_reasons = {
        v: n
        for enum, values in enums.items()
        if enum not in ("skb_drop_reason", "skb_drop_reason_subsys")
        for n, v in values.items()
        if v >> SUBSYS_SHIFT
    }
    return ReasonNames(core, subsystems, sub_reasons)


# ETH_P_* values of include/uapi/linux/if_ether.h (ABI): names for the common ones, hex otherwise.
ETH_P = {
    0x0003: "ALL",
    0x0004: "802.2",
    0x0800: "IPv4",
    0x0806: "ARP",
    0x8035: "RARP",
    0x8100: "802.1Q",
    0x86DD: "IPv6",
    0x8847: "MPLS",
    0x8848: "MPLS-mc",
    0x8863: "PPPoE-disc",
    0x8864: "PPPoE",
    0x888E: "EAPOL",
    0x88A8: "802.1ad",
    0x88CC: "LLDP",
    0x88E5: "MACsec",
    0x88F7: "PTP",
}

IPPROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 132: "sctp", 47: "gre", 50: "esp"}


def reason_label(subsystem: str, name: str) -> str:
    """NO_SOCKET, or OPENVSWITCH/OVS_DROP_LAST_ACTION for a subsystem's reason."""
    return f"{subsystem}/{name}" if subsystem else name


def protocol_name(protocol: int) -> str:
    return ETH_P.get(protocol, f"0x{protocol:04x}")


# What a reason means and where to look next: explanation text, keyed by the kernel's names.
EXPLAIN: dict[str, str] = {
    "NOT_SPECIFIED": "freed as a drop without a reason (an older code path): the location tells where",
    "NO_SOCKET": "no socket listens on the destination port: check the service, or who sends there",
    "SOCKET_RCVBUFF": "the socket's receive buffer was full: the reader is slow; raise SO_RCVBUF / rmem_max",
    "SOCKET_FILTER": "a socket filter (SO_ATTACH_FILTER, BPF) rejected the packet",
    "SOCKET_BACKLOG": "the socket backlog was full while user space held the socket lock",
    "SOCKET_CLOSE": "the socket was closed with data still queued",
    "PKT_TOO_SMALL": "the packet was shorter than its headers claim: a malformed or truncated sender",
    "TCP_CSUM": "bad TCP checksum: corruption on the path, or offload trouble",
    "UDP_CSUM": "bad UDP checksum: corruption on the path, or offload trouble",
    "IP_CSUM": "bad IP header checksum",
    "NETFILTER_DROP": "a netfilter rule dropped it: nft list ruleset / iptables -L -v -n",
    "OTHERHOST": "the frame was for another host's MAC (promiscuous mode, or a flooding switch)",
    "IP_INHDR": "invalid IP header (bad version, length or options)",
    "IP_RPFILTER": "reverse-path filter: the source is not routed back through this interface (rp_filter)",
    "IP_NOPROTO": "no handler for the IP protocol number (e.g. a tunnel module not loaded)",
    "IP_OUTNOROUTES": "no route to send the packet: ip route get <dst>",
    "IP_INNOROUTES": "no route for a received packet to be forwarded or delivered",
    "IP_INADDRERRORS": "a received packet's destination address is invalid here",
    "TCP_FLAGS": "TCP flags invalid for the connection state",
    "TCP_ZEROWINDOW": "the peer sent data into a zero receive window",
    "TCP_OLD_DATA": "TCP data already acknowledged (a retransmission)",
    "TCP_OVERWINDOW": "TCP data beyond the receive window",
    "TCP_OFOMERGE": "out-of-order data already held",
    "TCP_RESET": "the connection was reset",
    "TCP_INVALID_SEQUENCE": "TCP sequence number outside the window",
    "TCP_LISTEN_OVERFLOW": "the listen queue was full: the accept() loop is slow; raise somaxconn / backlog",
    "TCP_OLD_SEQUENCE": "TCP segment older than the window",
    "TCP_CLOSE": "a segment for a closed connection",
    "PROTO_MEM": "the protocol's memory limit was hit: net.ipv4.udp_mem / tcp_mem",
    "QDISC_DROP": "the transmit queue discipline dropped it: tc -s qdisc show",
    "QDISC_OVERLIMIT": "the qdisc's limit was exceeded: tc -s qdisc show",
    "CPU_BACKLOG": "the per-CPU backlog was full: net.core.netdev_max_backlog, RPS spread",
    "XDP": "an XDP program dropped it",
    "TC_INGRESS": "a tc ingress filter dropped it: tc -s filter show dev <dev> ingress",
    "TC_EGRESS": "a tc egress filter dropped it",
    "UNHANDLED_PROTO": "no handler for the link-layer protocol",
    "NEIGH_FAILED": "neighbour (ARP/ND) resolution failed: ip neigh",
    "NEIGH_QUEUEFULL": "too many packets waiting for neighbour resolution",
    "FULL_RING": "the device's ring was full",
    "NOMEM": "memory allocation failed",
    "DEV_READY": "the device was not up or not ready",
    "FRAG_REASM_TIMEOUT": "IP fragments timed out before reassembly",
    "DUP_FRAG": "duplicate IP fragment",
    "IPV6DISABLED": "IPv6 is disabled on the interface",
    "UNICAST_IN_L2_MULTICAST": "a unicast IP packet in a link-layer multicast/broadcast frame",
    "PKT_TOO_BIG": "larger than the MTU and not allowed to fragment",
}


@dataclass(frozen=True)
class Ranked:
    key: str
    count: int


@dataclass(frozen=True)
class ReasonRow:
    reason: int
    name: str
    subsystem: str
    per_s: float
    share_pct: float
    locations: tuple[Ranked, ...]  # busiest first
    protocols: tuple[Ranked, ...]
    devices: tuple[Ranked, ...]
    cpus: tuple[Ranked, ...]
    explanation: str

    @property
    def label(self) -> str:
        return reason_label(self.subsystem, self.name)


@dataclass(frozen=True)
class DropsView:
    interval_s: float
    total_per_s: float
    rows: tuple[ReasonRow, ...]  # busiest first
    events: tuple[DropEvent, ...]  # newest first
    logged: int
    suppressed: int
    lost: int
    unbucketed: int
    log_rate: int


def device_label(ifname: str, netns: int, host_netns: int, netns_names: Mapping[int, str]) -> str:
    """The device name, with its namespace when it is not the host's (every pod has an eth0):
    the namespace's name, or its inode when it has none."""
    name = ifname or "(no device)"
    if not netns or netns == host_netns:
        return name
    return f"{name}@{netns_names.get(netns, netns)}"


def _ranked(counter: Counter[str]) -> tuple[Ranked, ...]:
    return tuple(Ranked(k, v) for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def build_drops_view(sample: Sample, info: HostInfo) -> DropsView | None:
    """The drops of one sample, per second; None when the drops probe was not live."""
    drops = sample.drops
    if drops is None:
        return None
    interval_s = sample.interval_s
    netns_names = dict(sample.netns_names)
    total = sum(sum(r.per_cpu) for r in drops.reasons)
    rows = []
    for r in drops.reasons:
        count = sum(r.per_cpu)
        if not count:
            continue
        locations: Counter[str] = Counter()
        protocols: Counter[str] = Counter()
        devices: Counter[str] = Counter()
        for b in drops.buckets:
            if b.reason == r.reason:
                n = sum(b.per_cpu)
                locations[b.symbol] += n
                protocols[protocol_name(b.protocol)] += n
                devices[device_label(b.ifname, b.netns, info.netns, netns_names)] += n
        cpu_counts = Counter({f"CPU{cpu}": n for cpu, n in zip(info.cpus, r.per_cpu, strict=False) if n})
        rows.append(
            ReasonRow(
                reason=r.reason,
                name=r.name,
                subsystem=r.subsystem,
                per_s=count / interval_s,
                share_pct=100.0 * count / total,
                locations=_ranked(locations),
                protocols=_ranked(protocols),
                devices=_ranked(devices),
                cpus=_ranked(cpu_counts),
                explanation=EXPLAIN.get(r.name, ""),
            )
        )
    rows.sort(key=lambda row: (-row.per_s, row.name))
    return DropsView(
        interval_s=interval_s,
        total_per_s=total / interval_s,
        rows=tuple(rows),
        events=tuple(reversed(drops.events)),
        logged=drops.logged,
        suppressed=drops.suppressed,
        lost=drops.lost,
        unbucketed=drops.unbucketed,
        log_rate=drops.log_rate,
    )


def five_tuple(e: DropEvent) -> str:
    """'udp 10.200.0.1:40000 → 10.200.0.2:9', or '' when the packet was not IP."""
    if not e.saddr:
        return ""
    proto = IPPROTO.get(e.l4proto, f"proto {e.l4proto}")
    if e.sport or e.dport:
        src = f"[{e.saddr}]:{e.sport}" if ":" in e.saddr else f"{e.saddr}:{e.sport}"
        dst = f"[{e.daddr}]:{e.dport}" if ":" in e.daddr else f"{e.daddr}:{e.dport}"
        return f"{proto} {src} → {dst}"
    return f"{proto} {e.saddr} → {e.daddr}"


@dataclass(frozen=True)
class DropTotals:
    """Running totals since netscope started watching (or the recording began)."""

    drops: int = 0
    suppressed: int = 0
    lost: int = 0

    def add(self, sample: DropsSample) -> DropTotals:
        return DropTotals(
            self.drops + sum(sum(r.per_cpu) for r in sample.reasons),
            self.suppressed + sample.suppressed,
            self.lost + sample.lost,
        )


@dataclass(frozen=True)
class SnmpRow:
    """A loss counter of the kernel's /proc/net/snmp (this network namespace) that counted."""

    counter: str  # "Udp NoPorts"
    per_s: float  # over the newest interval
    total: int  # since netscope started watching


# The counters of /proc/net/snmp, netstat and snmp6 that count a packet lost, and why; the others
# there count traffic. They are the network namespace's own, kept whether or not BPF is allowed.
SNMP_LOSS_COUNTERS: dict[str, tuple[str, ...]] = {
    "Ip": ("InHdrErrors", "InAddrErrors", "InUnknownProtos", "InDiscards", "OutDiscards", "OutNoRoutes"),
    "Tcp": ("InErrs", "InCsumErrors"),
    "Udp": ("InErrors", "NoPorts", "RcvbufErrors", "SndbufErrors", "InCsumErrors", "MemErrors"),
    "TcpExt": (
        "ListenOverflows",
        "ListenDrops",
        "TCPBacklogDrop",
        "TCPRcvQDrop",
        "TCPZeroWindowDrop",
        "TCPOFODrop",
        "PFMemallocDrop",
        "TCPMinTTLDrop",
    ),
    "Ip6": ("InHdrErrors", "InAddrErrors", "InUnknownProtos", "InDiscards", "OutDiscards", "InNoRoutes"),
    "Udp6": ("InErrors", "NoPorts", "RcvbufErrors", "SndbufErrors", "InCsumErrors", "MemErrors"),
}
# And the counters of what each protocol took in: where a packet's path through the stack is counted
# without a hook (the device's own count is stats64; these are the IP and transport stages).
SNMP_IN_COUNTERS: dict[str, tuple[str, ...]] = {
    "Ip": ("InReceives", "InDelivers"),
    "Tcp": ("InSegs",),
    "Udp": ("InDatagrams",),
    "Ip6": ("InReceives", "InDelivers"),
    "Udp6": ("InDatagrams",),
}
SNMP_LOSS_KEYS = frozenset((group, name) for group, names in SNMP_LOSS_COUNTERS.items() for name in names)


def snmp_rows(totals: Mapping[tuple[str, str], int], latest: Sample) -> tuple[SnmpRow, ...]:
    """The loss counters with a count since start, the fastest now first, then the largest."""
    now = {(c.group, c.name): c.count for c in latest.snmp}
    rows = [
        SnmpRow(f"{group} {name}", now.get((group, name), 0) / latest.interval_s, total)
        for (group, name), total in totals.items()
        if total and (group, name) in SNMP_LOSS_KEYS
    ]
    return tuple(sorted(rows, key=lambda r: (-r.per_s, -r.total, r.counter)))


def reasons_by(
    drops: DropsSample, key: Callable[[DropBucket], K | None], wanted: Callable[[str], bool] = lambda _: True
) -> dict[K, dict[str, int]]:
    """The interval's drops of the reasons `wanted` from the breakdown, per `key` of their bucket
    (a namespace, a socket's process; None: left out) and per reason name."""
    names = {r.reason: r.name for r in drops.reasons if wanted(r.name)}
    out: dict[K, dict[str, int]] = {}
    for b in drops.buckets:
        k = key(b) if b.reason in names else None
        if k is not None:
            here = out.setdefault(k, {})
            here[names[b.reason]] = here.get(names[b.reason], 0) + sum(b.per_cpu)
    return out
