"""Flows probe (bpf_src/flows.bpf.c): received packets and drops per 5-tuple and namespace, parsed
from the packet headers in BPF, with the user's filter compiled into the program. Received packets
are estimated from a sample (each sampled skb counted times its weight); drops are exact."""

from __future__ import annotations

import ctypes
import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from netscope.model.drops import ReasonNames
from netscope.model.filter import Filter, address_words
from netscope.model.sample import FlowCount, FlowEvent, FlowsSample
from netscope.probes.base import Probe, address_text, per_cpu_values
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


@dataclass(frozen=True)
class FlowTotals:
    packets: tuple[int, ...]  # per CPU
    nbytes: int
    queues: int  # bitmask
    first_ns: int
    last_ns: int


@dataclass(frozen=True)
class Totals:
    flows: dict[Key, FlowTotals]
    drops: dict[tuple[Key, int], int]
    created: int
    filtered: int
    events_lost: int
    events: tuple[FlowEvent, ...]  # drained since the previous read


def _packed(words: Any) -> bytes:
    """struct flow_tuple's four u32 address words back to address bytes."""
    return b"".join(int(w).to_bytes(4, "little") for w in words)


def _key(k: Any) -> Key:
    t = k.t
    family = int(t.family)
    return (
        int(k.netns),
        family,
        int(t.proto),
        address_text(_packed(t.saddr), family),
        int(t.sport),
        address_text(_packed(t.daddr), family),
        int(t.dport),
        int(k.ifindex),
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

    def _wall(self, ns: int) -> float:
        wall, mono = self._clock
        return wall + (ns - mono) / 1e9

    def read_totals(self, bpf: Any) -> Totals:
        flows = {}
        table = bpf[b"flow_stats"]
        for k, values in table.items():
            queues = 0
            for v in values:
                queues |= int(v.queues)
            flows[_key(k)] = FlowTotals(
                packets=tuple(int(v.rx_packets) for v in per_cpu_values(values, self.cpus)),
                nbytes=sum(int(v.rx_bytes) for v in values),
                queues=queues,
                first_ns=min((int(v.first_ns) for v in values if v.first_ns), default=0),
                last_ns=max(int(v.last_ns) for v in values),
            )
        drops = {(_key(k.flow), int(k.reason)): int(v.value) for k, v in bpf[b"flow_drops"].items()}
        counters = bpf[b"flow_counters"]
        created, filtered, events_lost = (sum(int(v) for v in counters[ctypes.c_int(i)]) for i in range(3))
        bpf.ring_buffer_consume()
        events, self._events = self._events, []
        return Totals(flows, drops, created, filtered, events_lost, tuple(events))

    def delta(self, previous: Totals, current: Totals) -> FlowsSample:
        assert self.names is not None
        zero = tuple(0 for _ in self.cpus)
        drops: dict[Key, list[tuple[str, int]]] = {}
        # A dropped skb without a device belongs to the flow with the same 5-tuple in its namespace;
        # one without a namespace either (no socket), to the flow with the same 5-tuple anywhere.
        by_netns = {(key[0], *key[1:7]): key for key in current.flows}
        by_tuple = {key[1:7]: key for key in current.flows}
        for (dropped, reason), count in current.drops.items():
            d = count - previous.drops.get((dropped, reason), 0)
            key = dropped
            if dropped[0] == 0:
                key = by_tuple.get(dropped[1:7], dropped)
            elif dropped[7] == 0:
                key = by_netns.get((dropped[0], *dropped[1:7]), dropped)
            if d > 0:
                drops.setdefault(key, []).append((self.names.label(reason), d))
        flows = []
        for key in sorted(set(current.flows) | set(drops)):
            now = current.flows.get(key)
            was = previous.flows.get(key)
            packets = now.packets if now else zero
            before = was.packets if was and now and sum(was.packets) <= sum(now.packets) else zero
            d_packets = tuple(a - b for a, b in zip(packets, before, strict=True))
            d_bytes = (now.nbytes - (was.nbytes if was and before is not zero else 0)) if now else 0
            if not any(d_packets) and key not in drops:
                continue
            netns, family, proto, saddr, sport, daddr, dport, ifindex = key
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
                    drops=tuple(sorted(drops.get(key, []), key=lambda r: -r[1])),
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
