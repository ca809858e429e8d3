"""The Flows view: every flow's rates, drops, the bytes its reader copied and their copy latency,
and the reading process. Pure: joins the flows probe with the latency probe's sockets."""

from __future__ import annotations

import dataclasses
import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from netscope.model.filter import Filter, Tuple5
from netscope.model.latency import SOCK_BITS, percentile
from netscope.model.sample import (
    FlowCount,
    FlowsOther,
    FlowsSample,
    HostInfo,
    Sample,
    SocketOwner,
    SockLatency,
    rate_of,
)
from netscope.model.tcp import TcpIndex, TcpPath

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"}
# Flows in full detail in a view (the busiest, by packets and drops); the rest are summed in one
# `others`: a view's cost follows what it shows, not the hundred thousand flows the kernel may hold.
FLOWS_TOP = 500
# The kernel's flow table (--max-flows): the flows of one interval, so that 100k concurrent flows
# fit at N = 1; allocated as flows come. MAX_FLOWS bounds what user space reads in one interval.
FLOWS_MAX = 131_072
MAX_FLOWS = 1 << 22
ANY_ADDR = ("0.0.0.0", "::")  # a socket bound to every address


def calibrated(sample: FlowsSample, factor: float) -> FlowsSample:
    """Received packets and bytes (estimates: sampled weights) times `factor`; drops are exact
    (every drop is counted) and stay."""

    def times(n: int) -> int:
        return round(n * factor)

    return dataclasses.replace(
        sample,
        flows=tuple(
            dataclasses.replace(f, rx_packets=times(f.rx_packets), rx_bytes=times(f.rx_bytes))
            for f in sample.flows
        ),
        rest=dataclasses.replace(
            sample.rest, rx_packets=times(sample.rest.rx_packets), rx_bytes=times(sample.rest.rx_bytes)
        ),
        filtered=times(sample.filtered),
        not_held=times(sample.not_held),
    )


def with_unseen(sample: FlowsSample, unseen: int) -> FlowsSample:
    """`unseen` packets the kernel processed while the duty cycle's window saw too little of them to
    stand for (a flood that stopped before the window opened): in the others row, and said so, so
    that the rows and others add up to the kernel's count. Not under a filter (the kernel's count
    holds what the filter leaves out)."""
    if unseen <= 0 or sample.filter:
        return sample
    rest = dataclasses.replace(sample.rest, rx_packets=sample.rest.rx_packets + unseen)
    return dataclasses.replace(sample, rest=rest, unseen=sample.unseen + unseen)


def carried(window: FlowsSample, now: FlowsSample) -> FlowsSample:
    """An interval between two windows: the window's received packets and bytes stand for it (an
    estimate, as the window's were), and its drops are its own (the drop hook counts every drop,
    window or not): each flow the window shows gets this interval's drops, matched as the probe
    matches them (the same 5-tuple, namespace and device, unless the dropped skb had none), and a
    flow that only dropped now is a row of its own."""
    exact: dict[tuple[object, ...], FlowCount] = {}
    in_netns: dict[tuple[object, ...], FlowCount] = {}
    anywhere: dict[tuple[object, ...], FlowCount] = {}
    for f in window.flows:
        five = (f.family, f.proto, f.saddr, f.sport, f.daddr, f.dport)
        exact[(f.netns, f.ifindex, *five)] = f
        in_netns.setdefault((f.netns, *five), f)
        anywhere.setdefault(five, f)
    drops: dict[int, Counter[str]] = {}
    alone = []
    for d in now.flows:
        five = (d.family, d.proto, d.saddr, d.sport, d.daddr, d.dport)
        if not d.netns:
            owner = anywhere.get(five)
        elif not d.ifindex:
            owner = in_netns.get((d.netns, *five))
        else:
            owner = exact.get((d.netns, d.ifindex, *five))
        if owner is None:
            alone.append(d)
        else:
            drops.setdefault(id(owner), Counter()).update(dict(d.drops))
    flows = tuple(
        dataclasses.replace(f, drops=tuple(drops[id(f)].most_common()) if id(f) in drops else ())
        for f in window.flows
    )
    # How many flows: the window's or those that dropped now, whichever more (most of these were
    # in the window too; which ones, its others do not tell).
    total = max(len(window.flows) + window.rest.flows, len(now.flows) + now.rest.flows)
    rows = flows + tuple(alone)
    return dataclasses.replace(
        window,
        flows=rows,
        rest=dataclasses.replace(window.rest, flows=max(0, total - len(rows)), drops=now.rest.drops),
        not_held_drops=now.not_held_drops,
        events=now.events,
        events_lost=now.events_lost,
        events_skipped=now.events_skipped,
        watched=now.watched,
    )


@dataclass(frozen=True)
class FlowRow:
    flow: FlowCount
    label: str  # "udp 10.200.0.1:40001 → 10.200.0.2:9"
    netns: str  # "" for netscope's own namespace, else its name (or inode)
    rx_pps: float
    rx_bps: float
    copied_bytes: int | None  # None: no reader of this flow seen copying
    copy_p50_ns: float | None
    copy_p99_ns: float | None
    pid: int | None
    comm: str
    drops: int
    copy_hist: tuple[tuple[int, int], ...] = ()  # the reader socket's histogram (SOCK_BITS)
    owner_only: bool = False  # pid/comm from psutil's socket table: the owner has not read yet
    sample_rate: int = 1  # 1 in N packets counted: > 1, rx_pps and rx_bps are estimates
    copy_rate: int = 1  # 1 in N arrivals timed: > 1, the copy percentiles are a sample's
    tcp: TcpPath | None = None  # a TCP flow's sockets here, as the TCP probe saw them

    @property
    def expression(self) -> str:
        """A filter expression that selects this flow alone (what `/` edits on the flow screen)."""
        f = self.flow
        proto = PROTO_NAMES.get(f.proto, "")
        parts = [proto] if proto in ("tcp", "udp") else ["icmp"] if proto.startswith("icmp") else []
        parts += [f"src host {f.saddr}", f"dst host {f.daddr}"]
        if f.proto in (6, 17):
            parts += [f"sport {f.sport}", f"dport {f.dport}"]
        return " and ".join(parts)


# The orders the Flows pane cycles with `s`: name, and how rows order under it.
# Ties keep the busiest-first order of `rows`.
FLOW_SORTS: dict[str, Callable[[FlowRow], float | str]] = {
    "packets": lambda r: -r.rx_pps,
    "drops": lambda r: -r.drops,
    "copy p99": lambda r: -(r.copy_p99_ns or 0),
    "bytes": lambda r: -r.rx_bps,
    "flow": lambda r: r.label,
    "retransmits": lambda r: -(r.tcp.retransmits if r.tcp else 0),
}


@dataclass(frozen=True)
class FlowsView:
    interval_s: float
    rows: tuple[FlowRow, ...]  # busiest first: the top N (and the watched flow), in full detail
    not_held: int  # packets of flows the kernel's full table could not hold (counted in `others`)
    filtered: int
    filter: str
    sample_rate: int = 1  # 1 in N packets counted: > 1, the packet and byte rates are estimates
    others: FlowsOther = field(default_factory=FlowsOther)
    not_held_drops: int = 0  # drops the kernel's full table could not hold
    # The rows in each order of FLOW_SORTS (the busiest first is `rows`), sorted where the view is
    # built, off the UI thread: a key that sorts only picks one.
    orders: dict[str, tuple[FlowRow, ...]] = field(default_factory=dict)

    def sorted_by(self, name: str) -> tuple[FlowRow, ...]:
        return self.orders.get(name, self.rows)

    @property
    def flow_count(self) -> int:
        return len(self.rows) + self.others.flows


def flow_label(f: FlowCount) -> str:
    proto = PROTO_NAMES.get(f.proto, f"proto {f.proto}")
    if f.proto in (6, 17):
        src = f"[{f.saddr}]:{f.sport}" if f.family == 6 else f"{f.saddr}:{f.sport}"
        dst = f"[{f.daddr}]:{f.dport}" if f.family == 6 else f"{f.daddr}:{f.dport}"
        return f"{proto} {src} → {dst}"
    return f"{proto} {f.saddr} → {f.daddr}"


class Readers:
    """Who reads each flow: the sockets and their owners indexed by local port, and the count of
    flows to each destination, built once per view. Finding a flow's reader then costs a few
    lookups, not a scan of every flow and socket (quadratic: 20,000 flows held the UI for seconds)."""

    def __init__(
        self,
        sockets: tuple[SockLatency, ...],
        flows: tuple[FlowCount, ...],
        owners: tuple[SocketOwner, ...] = (),
    ) -> None:
        self._sockets: dict[tuple[int, int], list[SockLatency]] = {}
        for s in sockets:
            self._sockets.setdefault((s.protocol, s.sport), []).append(s)
        self._owners: dict[tuple[int, int], list[SocketOwner]] = {}
        for o in owners:
            self._owners.setdefault((o.proto, o.lport), []).append(o)
        self._sharing = Counter((f.proto, f.dport, f.daddr) for f in flows)

    def reader_of(self, f: FlowCount) -> SockLatency | None:
        """The socket reading a received flow: a connected socket whose local end is the flow's
        destination and whose peer is its source; else an unconnected one on the destination, when
        no other flow goes there (its reads cannot be split between flows)."""
        local = [s for s in self._sockets.get((f.proto, f.dport), ()) if s.saddr in (f.daddr, *ANY_ADDR)]
        exact = [s for s in local if s.dport == f.sport and s.daddr == f.saddr]
        if exact:
            return exact[0]
        unconnected = [s for s in local if s.dport == 0]
        return unconnected[0] if unconnected and self._sharing[(f.proto, f.dport, f.daddr)] == 1 else None

    def owner_of(self, f: FlowCount) -> SocketOwner | None:
        """The process owning the socket a flow goes to, from psutil (netscope's namespace only)."""
        for o in self._owners.get((f.proto, f.dport), ()):
            if o.laddr in (f.daddr, *ANY_ADDR) and (
                not o.raddr or (o.raddr == f.saddr and o.rport == f.sport)
            ):
                return o
        return None


def _weight(f: FlowCount) -> int:
    return f.rx_packets + sum(n for _, n in f.drops)


def _is_watched(f: FlowCount, watched: tuple[int, int, str, int, str, int] | None) -> bool:
    """Whether `f` is the flow the kernel watches (netns 0 there: in any namespace)."""
    if watched is None:
        return False
    netns, *tuple5 = watched
    return (f.proto, f.saddr, f.sport, f.daddr, f.dport) == tuple(tuple5) and netns in (0, f.netns)


def _others(rest: list[FlowCount], summed: FlowsOther) -> FlowsOther:
    """The flows past the top N, with what the probe already summed."""
    drops: Counter[str] = Counter(dict(summed.drops))
    for f in rest:
        drops.update(dict(f.drops))
    return FlowsOther(
        flows=len(rest) + summed.flows,
        rx_packets=sum(f.rx_packets for f in rest) + summed.rx_packets,
        rx_bytes=sum(f.rx_bytes for f in rest) + summed.rx_bytes,
        drops=tuple(drops.most_common()),
    )


def build_flows_view(
    sample: Sample, info: HostInfo, flt: Filter | None = None, top: int | None = FLOWS_TOP
) -> FlowsView | None:
    """The flows of a sample: the `top` busiest (None: all) in full detail, and the watched flow
    (the flow screen's) whatever its rank; the rest summed in `others`. `flt` keeps the matching
    ones (the kernel already filtered live flows with the filter it was compiled with; a recording,
    or a filter changed since, is filtered here)."""
    flows = sample.flows
    if flows is None:
        return None
    dt = sample.interval_s
    sockets = sample.latency.sockets if sample.latency else ()
    comms = {p.pid: p.comm for p in sample.latency.processes} if sample.latency else {}
    names = dict(sample.netns_names)
    rows = []
    own_netns = (0, info.netns)
    rate, copy_rate = rate_of(sample, "flows"), rate_of(sample, "latency")
    matching = [
        f
        for f in flows.flows
        if flt is None or flt.matches(Tuple5(f.family, f.proto, f.saddr, f.sport, f.daddr, f.dport))
    ]
    chosen, rest = matching, []
    if top is not None and len(matching) > top:
        chosen = heapq.nlargest(top, matching, key=_weight)
        kept = {id(f) for f in chosen}
        rest = [f for f in matching if id(f) not in kept]
        watched = next((f for f in rest if _is_watched(f, flows.watched)), None)
        if watched is not None:  # the flow screen's flow, whatever its rank
            chosen.append(watched)
            rest = [f for f in rest if f is not watched]
    # What the probe summed matches the filter it was compiled with, not another one.
    summed = flows.rest if flt is None or flt.text == flows.filter else FlowsOther()
    others = _others(rest, summed)
    readers = Readers(sockets, flows.flows, sample.socket_owners)
    tcp = TcpIndex(sample.tcp.conns) if sample.tcp is not None else None
    for f in chosen:
        sock = readers.reader_of(f)
        owner = None if sock or f.netns not in own_netns else readers.owner_of(f)
        rows.append(
            FlowRow(
                flow=f,
                label=flow_label(f),
                netns="" if f.netns in (0, info.netns) else names.get(f.netns, str(f.netns)),
                rx_pps=f.rx_packets / dt,
                rx_bps=f.rx_bytes / dt,
                copied_bytes=sock.bytes if sock else None,
                copy_p50_ns=percentile(sock.buckets, 50.0, SOCK_BITS) if sock else None,
                copy_p99_ns=percentile(sock.buckets, 99.0, SOCK_BITS) if sock else None,
                pid=sock.pid if sock else owner.pid if owner else None,
                comm=comms.get(sock.pid, "") if sock else owner.comm if owner else "",
                drops=sum(n for _, n in f.drops),
                copy_hist=sock.buckets if sock else (),
                owner_only=owner is not None,
                sample_rate=rate,
                copy_rate=copy_rate,
                tcp=tcp.path(f) if tcp is not None else None,
            )
        )
    rows.sort(key=lambda r: (-(r.rx_pps + r.drops), r.label))
    orders = {name: tuple(sorted(rows, key=key)) for name, key in FLOW_SORTS.items()}
    text = flt.text if flt else flows.filter
    return FlowsView(
        dt, tuple(rows), flows.not_held, flows.filtered, text, rate, others, flows.not_held_drops, orders
    )


def flows_where(
    view: FlowsView | None,
    *,
    reason: str | None = None,
    pid: int | None = None,
    cpu: int | None = None,
    device: tuple[int, int] | None = None,
) -> tuple[FlowRow, ...]:
    """The drill-down from a stage to its flows: dropped with a reason, read by a process, received
    on a CPU, or on a device (netns, ifindex)."""
    if view is None:
        return ()
    rows = view.rows
    if reason is not None:
        rows = tuple(r for r in rows if any(name == reason for name, _ in r.flow.drops))
    if pid is not None:
        rows = tuple(r for r in rows if r.pid == pid)
    if cpu is not None:
        rows = tuple(r for r in rows if cpu in r.flow.cpus)
    if device is not None:
        rows = tuple(r for r in rows if (r.flow.netns, r.flow.ifindex) == device)
    return rows
