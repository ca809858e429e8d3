"""Flows probe (bpf_src/flows.bpf.c): received packets and drops per 5-tuple and namespace, parsed
from the packet headers in BPF, with the user's filter compiled into the program. Received packets
are estimated from a sample (each sampled skb counted times its weight); drops are exact."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import heapq
import ipaddress
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netscope.model.drops import ReasonNames
from netscope.model.filter import Filter
from netscope.model.flows import FLOWS_MAX, calibrated, carried, with_unseen
from netscope.model.sample import FlowCount, FlowEvent, FlowsOther, FlowsSample
from netscope.probes import cdefs
from netscope.probes.base import BatchReader, IntervalTables, Probe, ProbeOptions, address_text, map_bytes
from netscope.probes.btf import kernel_btf
from netscope.probes.drops import reason_names
from netscope.probes.kallsyms import kernel_symbols
from netscope.probes.offsets import kernel_offsets

NO_QUEUE_BIT = cdefs.define("NO_QUEUE_BIT")
LAST_CPU_BIT = 127  # a CPU id at or past it (a box of more than 127 CPUs) sets this bit
# After pointing the programs at the spare table, how long before the old one is read: a program
# that looked the old one up (in softirq, not preemptible) has long finished by then.
FIRST_SEEN_KEEP = 30  # intervals a flow out of the top N keeps its first-seen time

Watched = tuple[int, int, str, int, str, int]  # netns, proto, saddr, sport, daddr, dport

Key = tuple[
    int, int, int, str, int, str, int, int
]  # netns, family, proto, saddr, sport, daddr, dport, ifindex

# struct flow_key (bpf_src/netscope.h) as raw bytes: the tuple's 40 bytes, then netns and ifindex.
FLOW_KEY = struct.Struct("<16s16sHHBBxxII")
TUPLE_BYTES, NETNS_END = 40, 44
FLOW_STAT = struct.Struct("<7Q")  # struct flow_stat
STAT_WORDS = FLOW_STAT.size // 8
DROP_KEY = struct.Struct(f"<{FLOW_KEY.size}sI4x")  # struct flow_drop_key
COUNT = struct.Struct("<Q")
WATCH = struct.Struct(f"<{TUPLE_BYTES}sIII4x")  # struct flow_watch: the tuple, netns, ifindex, active
# flow_counters' slots (NS_FLOW_STAT_* in bpf_src/netscope.h)
FLOW_STATS = cdefs.stats("FLOW")  # NS_FLOW_STAT_*, in index order
FILTERED, EVENTS_LOST, UNHELD_PACKETS, UNHELD_BYTES, UNHELD_DROPS, EVENTS_SKIPPED = (
    FLOW_STATS.index(name)
    for name in (
        "filtered",
        "events_lost",
        "unheld_packets",
        "unheld_bytes",
        "unheld_drops",
        "events_skipped",
    )
)
# The watched flow's packets sent one by one: at most so many a window (bpf_src/flows.bpf.c).
EVENTS_WINDOW_NS, EVENTS_PER_WINDOW = 1_000_000_000, 1000


@dataclass(frozen=True)
class Interval:
    """One interval's flow tables, read and cleared, and the cumulative counters."""

    keys: bytes  # struct flow_key, one after another
    stats: bytes  # struct flow_stat, one after another
    drop_keys: bytes  # struct flow_drop_key, one after another
    drop_counts: bytes  # u64, one per drop key
    counters: tuple[int, ...]  # flow_counters, all CPUs, cumulative
    events: tuple[FlowEvent, ...]  # drained since the previous read

    @property
    def flows(self) -> int:
        return len(self.keys) // FLOW_KEY.size

    def key(self, i: int) -> bytes:
        return self.keys[i * FLOW_KEY.size : (i + 1) * FLOW_KEY.size]

    @property
    def drop_entries(self) -> int:
        return len(self.drop_counts) // COUNT.size

    def drop_key(self, j: int) -> bytes:
        """The struct flow_key of drop entry `j`."""
        return self.drop_keys[j * DROP_KEY.size : j * DROP_KEY.size + FLOW_KEY.size]


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


def _tuple_bytes(flow: Watched) -> bytes:
    """A watched flow's struct flow_tuple (the first TUPLE_BYTES of its keys)."""
    _, proto, saddr, sport, daddr, dport = flow
    src, dst = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
    return struct.pack(
        "<16s16sHHBBxx",
        src.packed.ljust(16, b"\0"),
        dst.packed.ljust(16, b"\0"),
        sport,
        dport,
        src.version,
        proto,
    )


def _same(key: bytes) -> bytes:
    return key


def _indexes(keys: bytes, prefix: bytes, stride: int) -> list[int]:
    """The entries of `keys` (each `stride` bytes) that begin with `prefix`."""
    found, at = [], keys.find(prefix)
    while at >= 0:
        if at % stride == 0:
            found.append(at // stride)
        at = keys.find(prefix, at + 1)
    return found


class FlowsProbe(Probe[FlowsSample]):
    name = "flows"
    sample_field = "flows"
    filtered = True
    source_file = "flows.bpf.c"
    tracepoints = (("net", "netif_receive_skb"), ("skb", "kfree_skb"))
    per_packet = ("netif_receive_skb", "kfree_skb")
    sampled = True
    every_event = ("kfree_skb",)
    runs_are_softnet_processed = True

    @classmethod
    def create(cls, cpus: tuple[int, ...], flt: Filter | None, options: ProbeOptions) -> FlowsProbe:
        return cls(cpus, flt, options.max_flows, options.flows_top)

    def __init__(
        self,
        cpus: tuple[int, ...],
        flt: Filter | None = None,
        max_flows: int = FLOWS_MAX,
        top: int | None = None,
    ) -> None:
        super().__init__(cpus, flt)
        self.max_flows = max_flows
        self.top = top  # flows decoded in full per interval, the busiest (None: all); the rest summed
        self.names: ReasonNames | None = None
        self._clock = (time.time(), time.monotonic_ns())
        self._events: list[FlowEvent] = []
        self._event_table: Any = None
        self._watch_table: Any = None
        self.watched: Watched | None = None
        # The two tables of each kind, swapped every read.
        self._tables = IntervalTables(("flow_stats", "flow_drops"))
        # Their fds (their memory is `table_bytes`, not what they hold now).
        self.table_fds: tuple[int, ...] = ()
        self.table_bytes = 0  # the tables' memory at their fullest, as the last interval ended
        self._stats_reader = BatchReader(FLOW_KEY.size, FLOW_STAT.size)
        self._drops_reader = BatchReader(DROP_KEY.size, COUNT.size)
        self._first_seen: dict[bytes, tuple[float, int]] = {}  # flow -> (first seen, read it was last shown)
        self._reads = 0

    def before_attach(self, bpf: Any) -> None:
        self._tables.prime(bpf)

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
            entry = table.Leaf.from_buffer_copy(WATCH.pack(_tuple_bytes(flow), flow[0], 0, 1))
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
            "NS_FLOWS_MAX": self.max_flows,
            "NS_FLOW_EVENTS_WINDOW_NS": EVENTS_WINDOW_NS,
            "NS_FLOW_EVENTS_PER_WINDOW": EVENTS_PER_WINDOW,
            "NS_SKB_NOT_DROPPED_YET": reasons.get("SKB_NOT_DROPPED_YET", 0),
            "NS_SKB_CONSUMED": reasons.get("SKB_CONSUMED", 1),
        }
        return defines

    @staticmethod
    def _owner(current: Interval, index: dict[bytes, int]) -> Callable[[bytes], bytes] | None:
        """The flow a drop entry's key belongs to (None: its own key, the usual case). A dropped
        skb without a device belongs to the flow with the same 5-tuple in its namespace; one
        without a namespace either (no socket), to the flow with the same 5-tuple anywhere.
        `index`: the interval's received flows."""
        words = memoryview(current.drop_keys).cast("I")
        stride, netns_at = DROP_KEY.size // 4, TUPLE_BYTES // 4
        if 0 not in words[netns_at::stride] and 0 not in words[netns_at + 1 :: stride]:
            return None  # (every drop has its device and namespace)
        by_netns = {k[:NETNS_END]: k for k in index}
        by_tuple = {k[:TUPLE_BYTES]: k for k in index}

        def owner(k: bytes) -> bytes:
            if k[TUPLE_BYTES:NETNS_END] == bytes(4):
                return by_tuple.get(k[:TUPLE_BYTES], k)
            if k[NETNS_END:] == bytes(4):
                return by_netns.get(k[:NETNS_END], k)
            return k

        return owner

    def _wall(self, ns: int) -> float:
        wall, mono = self._clock
        return wall + (ns - mono) / 1e9

    def _swap(self, bpf: Any) -> tuple[int, int]:
        """Point the programs at the spare tables and return the ones they wrote (stats, drops)."""
        side = self._tables.swap(bpf)
        self.table_fds = self._tables.fds(bpf)
        self.table_bytes = sum(map_bytes(fd) for fd in self.table_fds)
        return bpf[f"flow_stats_{side}".encode()].map_fd, bpf[f"flow_drops_{side}".encode()].map_fd

    def read_totals(self, bpf: Any) -> Interval:
        """The interval's tables (read and emptied) and the cumulative counters."""
        stats_fd, drops_fd = self._swap(bpf)
        keys, stats = self._stats_reader.read(stats_fd, delete=True)
        drop_keys, drop_counts = self._drops_reader.read(drops_fd, delete=True)
        table = bpf[b"flow_counters"]
        counters = tuple(sum(int(v) for v in table[ctypes.c_int(i)]) for i in range(len(FLOW_STATS)))
        bpf.ring_buffer_consume()
        events, self._events = self._events, []
        return Interval(keys, stats, drop_keys, drop_counts, counters, tuple(events))

    def _chosen(
        self, current: Interval, index: dict[bytes, int], owner: Callable[[bytes], bytes]
    ) -> dict[bytes, int | None]:
        """The flows decoded in full, each with its entry in the stats (None: drops only): the
        `top` busiest by packets and drops, and the watched flow whatever its rank. `index` has
        every received flow's entry when there are drops (it is what matches them to flows)."""
        n, nd = current.flows, current.drop_entries
        if self.top is None or n + nd <= self.top:
            chosen: dict[bytes, int | None] = {current.key(i): i for i in range(n)}
            for j in range(nd):
                k = owner(current.drop_key(j))
                chosen.setdefault(k, index.get(k))
            return chosen
        packets = memoryview(current.stats).cast("Q")[0::STAT_WORDS]
        dropped = memoryview(current.drop_counts).cast("Q")
        entry: dict[bytes, int | None] = {
            current.key(i): i for i in heapq.nlargest(self.top, range(n), key=packets.__getitem__)
        }
        drops: dict[bytes, int] = {}  # (of the busiest drop entries only: enough to rank)
        for j in heapq.nlargest(self.top, range(nd), key=dropped.__getitem__):
            k = owner(current.drop_key(j))
            entry.setdefault(k, index.get(k))
            drops[k] = drops.get(k, 0) + dropped[j]

        def weight(k: bytes) -> int:
            i = entry[k]
            return (packets[i] if i is not None else 0) + drops.get(k, 0)

        chosen = {k: entry[k] for k in heapq.nlargest(self.top, entry, key=weight)}
        if self.watched is not None:  # the flow screen's, whatever its rank
            wanted = _tuple_bytes(self.watched)
            chosen.update((current.key(i), i) for i in _indexes(current.keys, wanted, FLOW_KEY.size))
            for j in _indexes(current.drop_keys, wanted, DROP_KEY.size):
                k = owner(current.drop_key(j))
                chosen.setdefault(k, index.get(k))
        return chosen

    def calibrate(self, data: FlowsSample, factor: float) -> FlowsSample:
        return calibrated(data, factor)

    def carry(self, window: FlowsSample, now: FlowsSample) -> FlowsSample:
        return carried(window, now)

    def with_unseen(self, data: FlowsSample, unseen: int) -> FlowsSample:
        return with_unseen(data, unseen)

    def delta(self, previous: Interval, current: Interval) -> FlowsSample:
        """The interval's flows: the chosen ones decoded, the rest summed in `rest`. Its cost
        follows the flows shown and the interval's entries, and keeps no object per entry: 100k
        flows dropped in an interval are 100k entries."""
        assert self.names is not None
        self._reads += 1
        counts = [a - b for a, b in zip(current.counters, previous.counters, strict=True)]
        n, nd = current.flows, current.drop_entries
        drop_counts = memoryview(current.drop_counts).cast("Q")
        reasons = memoryview(current.drop_keys).cast("I")[FLOW_KEY.size // 4 :: DROP_KEY.size // 4]
        # Which entry each received flow is: needed only to match drops with their flows.
        index = {current.key(i): i for i in range(n)} if nd else {}
        mapping = self._owner(current, index)
        owner = mapping or _same
        chosen = self._chosen(current, index, owner)
        # One pass over the drop entries: the totals per reason, the drops of the flows shown, and
        # the flows that dropped without a sampled packet (a flow has an entry per reason: when
        # there are several reasons, or entries merge into one flow, those are counted once).
        by_reason: dict[int, int] = {}
        shown: dict[bytes, list[tuple[str, int]]] = {}
        unreceived = 0
        merged: set[bytes] | None = None if len(set(reasons)) <= 1 and mapping is None else set()
        for j, (reason, c) in enumerate(zip(reasons, drop_counts, strict=True)):
            k = owner(current.drop_key(j))
            by_reason[reason] = by_reason.get(reason, 0) + c
            if k in chosen:
                shown.setdefault(k, []).append((self.names.label(reason), c))
            if k not in index:
                if merged is None:
                    unreceived += 1
                else:
                    merged.add(k)
        unreceived += len(merged or ())
        words = memoryview(current.stats).cast("Q")
        flows = []
        shown_packets = shown_bytes = 0
        for raw, i in chosen.items():
            stat = FLOW_STAT.unpack_from(current.stats, i * FLOW_STAT.size) if i is not None else None
            rx_packets, rx_bytes, queues, cpus_lo, cpus_hi, first_ns, last_ns = stat or (0,) * STAT_WORDS
            shown_packets += rx_packets
            shown_bytes += rx_bytes
            cpus = cpus_lo | cpus_hi << 64
            netns, family, proto, saddr, sport, daddr, dport, ifindex = _key(raw)
            flows.append(
                FlowCount(
                    netns=netns,
                    family=family,
                    proto=proto,
                    saddr=saddr,
                    sport=sport,
                    daddr=daddr,
                    dport=dport,
                    rx_packets=rx_packets,
                    rx_bytes=rx_bytes,
                    cpus=tuple(c for c in self.cpus if cpus >> min(c, LAST_CPU_BIT) & 1),
                    queues=tuple(q for q in range(NO_QUEUE_BIT) if queues >> q & 1)
                    + ((-1,) if queues >> NO_QUEUE_BIT & 1 else ()),
                    drops=tuple(sorted(shown.get(raw, []), key=lambda r: -r[1])),
                    first_seen=self._seen(raw, self._wall(first_ns) if first_ns else 0.0),
                    last_seen=self._wall(last_ns) if last_ns else 0.0,
                    ifindex=ifindex,
                )
            )
        rest_drops: Counter[str] = Counter()
        for reason, c in by_reason.items():
            rest_drops[self.names.label(reason)] += c
        for pairs in shown.values():
            rest_drops.subtract(dict(pairs))
        rest = FlowsOther(
            flows=n + unreceived - len(flows),
            rx_packets=sum(words[0::STAT_WORDS]) - shown_packets + counts[UNHELD_PACKETS],
            rx_bytes=sum(words[1::STAT_WORDS]) - shown_bytes + counts[UNHELD_BYTES],
            drops=tuple((r, c) for r, c in rest_drops.most_common() if c > 0),
        )
        self._forget_seen()
        if counts[EVENTS_LOST]:  # the cost line's "events lost": every probe's, running
            lost = self.status.lost_events + counts[EVENTS_LOST]
            self.status = dataclasses.replace(self.status, lost_events=lost)
        return FlowsSample(
            flows=tuple(flows),
            filtered=counts[FILTERED],
            filter=self.filter.text if self.filter else "",
            rest=rest,
            not_held=counts[UNHELD_PACKETS],
            not_held_drops=counts[UNHELD_DROPS],
            events=current.events,
            events_lost=counts[EVENTS_LOST],
            events_skipped=counts[EVENTS_SKIPPED],
            watched=self.watched,
        )

    def _seen(self, raw: bytes, first: float) -> float:
        """When netscope first saw this flow: the table holds one interval, so the flows shown
        keep theirs here (a while after they were last shown)."""
        was = self._first_seen.get(raw)
        if was is not None and was[0]:
            first = was[0]
        self._first_seen[raw] = (first, self._reads)
        return first

    def _forget_seen(self) -> None:
        if self._reads % FIRST_SEEN_KEEP == 0:
            oldest = self._reads - FIRST_SEEN_KEEP
            self._first_seen = {k: v for k, v in self._first_seen.items() if v[1] > oldest}
