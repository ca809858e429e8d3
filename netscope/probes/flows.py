"""Flows probe (bpf_src/flows.bpf.c): received packets and drops per 5-tuple and namespace, parsed
from the packet headers in BPF, with the user's filter compiled into the program. Received packets
are estimated from a sample (each sampled skb counted times its weight); drops are exact."""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import struct
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from netscope.model.drops import ReasonNames
from netscope.model.filter import Filter, address_words
from netscope.model.sample import FlowCount, FlowEvent, FlowsSample
from netscope.probes.base import BatchReader, Probe, address_text, cpu_positions, possible_cpus
from netscope.probes.btf import kernel_btf
from netscope.probes.drops import reason_names
from netscope.probes.kallsyms import kernel_symbols
from netscope.probes.offsets import kernel_offsets

FLOWS_MAX = 16384
NO_QUEUE_BIT = 63

Watched = tuple[int, int, str, int, str, int]  # netns, proto, saddr, sport, daddr, dport

Key = tuple[
    int, int, int, str, int, str, int, int
]  # netns, family, proto, saddr, sport, daddr, dport, ifindex


class FlowTotals(NamedTuple):
    """One flow's cumulative counts (a tuple: a hundred thousand are made each read)."""

    packets: tuple[int, ...]  # per CPU
    nbytes: int
    queues: int  # bitmask
    first_ns: int
    last_ns: int


# struct flow_key (bpf_src/netscope.h) as raw bytes: the tuple's 40 bytes, then netns and ifindex.
FLOW_KEY = struct.Struct("<16s16sHHBBxxII")
TUPLE_BYTES, NETNS_END = 40, 44
FLOW_STAT = struct.Struct("<5Q")  # struct flow_stat, per CPU (a multiple of 8 bytes: no padding)
DROP_KEY = struct.Struct(f"<{FLOW_KEY.size}sI4x")  # struct flow_drop_key
COUNT = struct.Struct("<Q")


@dataclass(frozen=True)
class Totals:
    flows: dict[bytes, FlowTotals]  # by raw struct flow_key
    drops: dict[tuple[bytes, int], int]
    created: int
    filtered: int
    events_lost: int
    events: tuple[FlowEvent, ...]  # drained since the previous read


@functools.lru_cache(maxsize=1 << 16)
def _address(raw: bytes, family: int) -> str:
    """Addresses repeat from flow to flow: each is made text once."""
    return address_text(raw, family)


def _key(raw: bytes) -> Key:
    saddr, daddr, sport, dport, family, proto, netns, ifindex = FLOW_KEY.unpack(raw)
    return (
        netns,
        family,
        proto,
        _address(saddr, family),
        sport,
        _address(daddr, family),
        dport,
        ifindex,
    )


class FlowsProbe(Probe[FlowsSample]):
    name = "flows"
    source_file = "flows.bpf.c"
    tracepoints = (("net", "netif_receive_skb"), ("skb", "kfree_skb"))
    per_packet = ("netif_receive_skb", "kfree_skb")
    sampled = True
    every_event = ("kfree_skb",)

    def __init__(self, cpus: tuple[int, ...], flt: Filter | None = None) -> None:
        super().__init__(cpus, flt)
        self.names: ReasonNames | None = None
        self._clock = (time.time(), time.monotonic_ns())
        self._events: list[FlowEvent] = []
        self._event_table: Any = None
        self._watch_table: Any = None
        self.watched: Watched | None = None
        self._stats_reader: BatchReader | None = None
        self._drops_reader: BatchReader | None = None
        self._readers_of: Any = None  # the BPF object they read
        self._positions = tuple(cpu_positions(cpus))  # each of `cpus` in the per-CPU values

    def attached(self, bpf: Any) -> None:
        self._event_table = bpf[b"flow_events"]
        self._event_table.open_ring_buffer(self._on_event)
        self._watch_table = bpf[b"flow_watch"]
        if self.watched is not None:
            self.watch(self.watched)

    def watch(self, flow: Watched | None) -> None:
        """Send this flow's packets one by one (the flow screen), or stop (None)."""
        self.watched = flow
        table = self._watch_table
        if table is None:
            return
        entry = table.Leaf()
        if flow is not None:
            netns, proto, saddr, sport, daddr, dport = flow
            src, dst = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
            t = entry.flow.t
            t.family, t.proto, t.sport, t.dport = src.version, proto, sport, dport
            for i, word in enumerate(address_words(src.packed)):
                t.saddr[i] = word
            for i, word in enumerate(address_words(dst.packed)):
                t.daddr[i] = word
            entry.flow.netns = netns
            entry.active = 1
        table[ctypes.c_int(0)] = entry

    def _on_event(self, _ctx: Any, data: Any, _size: int) -> None:
        assert self.names is not None
        e = self._event_table.event(data)
        reason = ""
        if e.dropped:
            reason = self.names.label(int(e.reason))
        self._events.append(
            FlowEvent(
                ts=self._wall(int(e.ts_ns)),
                cpu=int(e.cpu),
                queue=int(e.queue) - 1 if e.queue and not e.dropped else -1,
                length=int(e.len),
                reason=reason,
                symbol=kernel_symbols().symbolize(int(e.location)) if e.dropped else "",
            )
        )

    def defines(self) -> dict[str, int | str]:
        btf = kernel_btf()
        self.names = reason_names(btf)
        reasons = btf.enum("skb_drop_reason")
        defines: dict[str, int | str] = {
            **kernel_offsets(btf),
            "NS_FLOWS_MAX": FLOWS_MAX,
            "NS_SKB_NOT_DROPPED_YET": reasons.get("SKB_NOT_DROPPED_YET", 0),
            "NS_SKB_CONSUMED": reasons.get("SKB_CONSUMED", 1),
        }
        return defines

    def _drops_by_flow(self, previous: Totals, current: Totals) -> dict[bytes, list[tuple[str, int]]]:
        """The interval's drops by the flow they belong to. A dropped skb without a device belongs
        to the flow with the same 5-tuple in its namespace; one without a namespace either (no
        socket), to the flow with the same 5-tuple anywhere."""
        assert self.names is not None
        drops: dict[bytes, list[tuple[str, int]]] = {}
        by_netns: dict[bytes, bytes] | None = None
        by_tuple: dict[bytes, bytes] | None = None
        for (dropped, reason), count in current.drops.items():
            d = count - previous.drops.get((dropped, reason), 0)
            if d <= 0:
                continue
            key = dropped
            if dropped[TUPLE_BYTES:NETNS_END] == bytes(4):
                by_tuple = by_tuple or {k[:TUPLE_BYTES]: k for k in current.flows}
                key = by_tuple.get(dropped[:TUPLE_BYTES], dropped)
            elif dropped[NETNS_END:] == bytes(4):
                by_netns = by_netns or {k[:NETNS_END]: k for k in current.flows}
                key = by_netns.get(dropped[:NETNS_END], dropped)
            drops.setdefault(key, []).append((self.names.label(reason), d))
        return drops

    def _wall(self, ns: int) -> float:
        wall, mono = self._clock
        return wall + (ns - mono) / 1e9

    def _readers(self, bpf: Any) -> tuple[BatchReader, BatchReader]:
        """The batch readers of this BPF object's maps (a new object, compiled for a new filter,
        has maps of its own)."""
        if self._readers_of is not bpf:
            per_cpu = FLOW_STAT.size * possible_cpus()
            self._stats_reader = BatchReader(bpf[b"flow_stats"], FLOW_KEY.size, per_cpu, FLOWS_MAX)
            self._drops_reader = BatchReader(bpf[b"flow_drops"], DROP_KEY.size, COUNT.size, FLOWS_MAX)
            self._readers_of = bpf
        assert self._stats_reader is not None and self._drops_reader is not None
        return self._stats_reader, self._drops_reader

    def read_totals(self, bpf: Any) -> Totals:
        stats_reader, drops_reader = self._readers(bpf)
        keys, values, n = stats_reader.read()
        stride = stats_reader.value_size
        ks = FLOW_KEY.size
        positions = self._positions
        flows = {}
        for i in range(n):
            per_cpu = list(FLOW_STAT.iter_unpack(values[i * stride : (i + 1) * stride]))
            queues = 0
            for v in per_cpu:
                queues |= v[2]
            flows[bytes(keys[i * ks : (i + 1) * ks])] = FlowTotals(
                tuple(per_cpu[p][0] for p in positions),
                sum(v[1] for v in per_cpu),
                queues,
                min((v[3] for v in per_cpu if v[3]), default=0),
                max(v[4] for v in per_cpu),
            )
        keys, values, n = drops_reader.read()
        drops = {
            (raw, reason): count
            for (raw, reason), (count,) in zip(
                DROP_KEY.iter_unpack(keys), COUNT.iter_unpack(values), strict=True
            )
        }
        counters = bpf[b"flow_counters"]
        created, filtered, events_lost = (sum(int(v) for v in counters[ctypes.c_int(i)]) for i in range(3))
        bpf.ring_buffer_consume()
        events, self._events = self._events, []
        return Totals(flows, drops, created, filtered, events_lost, tuple(events))

    def delta(self, previous: Totals, current: Totals) -> FlowsSample:
        """The interval's flows: only those that received or dropped anything are decoded."""
        assert self.names is not None
        zero = tuple(0 for _ in self.cpus)
        drops = self._drops_by_flow(previous, current)
        flows = []
        for raw in (*current.flows, *(k for k in drops if k not in current.flows)):
            now = current.flows.get(raw)
            was = previous.flows.get(raw)
            packets = now.packets if now else zero
            before = was.packets if was and now and sum(was.packets) <= sum(now.packets) else zero
            if packets == before and raw not in drops:
                continue
            d_packets = tuple(a - b for a, b in zip(packets, before, strict=True))
            d_bytes = (now.nbytes - (was.nbytes if was and before is not zero else 0)) if now else 0
            netns, family, proto, saddr, sport, daddr, dport, ifindex = _key(raw)
            queues = now.queues if now else 0
            flows.append(
                FlowCount(
                    netns=netns,
                    family=family,
                    proto=proto,
                    saddr=saddr,
                    sport=sport,
                    daddr=daddr,
                    dport=dport,
                    rx_packets=sum(d_packets),
                    rx_bytes=d_bytes,
                    cpus=tuple(cpu for cpu, n in zip(self.cpus, d_packets, strict=True) if n),
                    queues=tuple(q for q in range(NO_QUEUE_BIT) if queues >> q & 1)
                    + ((-1,) if queues >> NO_QUEUE_BIT & 1 else ()),
                    drops=tuple(sorted(drops.get(raw, []), key=lambda r: -r[1])),
                    first_seen=self._wall(now.first_ns) if now and now.first_ns else 0.0,
                    last_seen=self._wall(now.last_ns) if now and now.last_ns else 0.0,
                    ifindex=ifindex,
                )
            )
        live = len(current.flows)
        return FlowsSample(
            flows=tuple(flows),
            evictions=max(0, (current.created - previous.created) - (live - len(previous.flows))),
            filtered=current.filtered - previous.filtered,
            filter=self.filter.text if self.filter else "",
            events=current.events,
            events_lost=current.events_lost - previous.events_lost,
            watched=self.watched,
        )
