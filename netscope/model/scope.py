"""Which processes the views are narrowed to (`--pid`, `--container`, or `pid N` / `container X`
in the `/` prompt): the per-process views (copy latency, drops at sockets, flows by their reader,
processes, bytes sent) keep what belongs to those processes, the Rings pane their network
namespaces. What belongs to no process (interrupts, softirqs, NAPI, the stage balance) stays the
whole box's. Pure: the processes in scope are found each interval from what /proc and the probes
told of them (ProcessFacts, the senders' cgroups)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from netscope.model.containers import container_of
from netscope.model.filter import Scope
from netscope.model.flows import ANY_ADDR
from netscope.model.sample import DropReasonCount, DropsSample, FlowsOther, Sample


def scoped(sample: Sample, scope: Scope) -> Sample:
    """The sample narrowed to the processes of `scope` (itself when the scope is the whole box)."""
    return narrowed(sample, pids_in(scope, sample), cgroups_in(scope, sample)) if scope else sample


def pids_in(scope: Scope, sample: Sample) -> frozenset[int]:
    """The processes of this interval in `scope`: its pids, and those whose cgroup (from /proc, or
    for a sender gone since, the cgroup it sent from) is one of its containers."""
    pids = set(scope.pids)
    if scope.containers:
        names = dict(sample.container_names)
        pids.update(f.pid for f in sample.processes if scope.holds_container(container_of(f.cgroup), names))
        paths = dict(sample.cgroups)
        pids.update(
            s.pid
            for s in sample.sends or ()
            if s.cgroup_id in paths and scope.holds_container(container_of(paths[s.cgroup_id]), names)
        )
    return frozenset(pids)


def cgroups_in(scope: Scope, sample: Sample) -> frozenset[int]:
    """The cgroup ids of this interval (the senders', the drops' sockets') in `scope`'s containers:
    a socket's drops belong to its container even when no process holding it was found."""
    if not scope.containers:
        return frozenset()
    names = dict(sample.container_names)
    return frozenset(i for i, path in sample.cgroups if scope.holds_container(container_of(path), names))


class Endpoints:
    """The local addresses and ports of the sockets of the processes in scope: what a flow or a
    logged drop is addressed to when it belongs to one of them."""

    def __init__(self, sockets: Iterable[tuple[int, str, int]]) -> None:
        self._local: dict[tuple[int, int], set[str]] = {}
        for proto, addr, port in sockets:
            self._local.setdefault((proto, port), set()).add(addr)

    def hold(self, proto: int, daddr: str, dport: int) -> bool:
        addrs = self._local.get((proto, dport))
        return addrs is not None and (daddr in addrs or not addrs.isdisjoint(ANY_ADDR))


def narrowed(sample: Sample, pids: Collection[int], cgroups: Collection[int] = ()) -> Sample:
    """The sample with its per-process parts narrowed to `pids`: their reads and sockets, their
    sends, the drops at their sockets or at sockets of the `cgroups` (by reason; the logged ones
    addressed to one of their sockets), and the flows addressed to one of their sockets (those of
    no known socket, summed in the flows' others, are left out)."""
    latency = sample.latency
    if latency is not None:
        latency = dataclasses.replace(
            latency,
            processes=tuple(p for p in latency.processes if p.pid in pids),
            sockets=tuple(s for s in latency.sockets if s.pid in pids),
        )
    endpoints = Endpoints(
        [(s.protocol, s.saddr, s.sport) for s in (latency.sockets if latency else ())]
        + [(o.proto, o.laddr, o.lport) for o in sample.socket_owners if o.pid in pids]
    )
    drops = sample.drops
    if drops is not None:
        mine = {ino for ino, pid in sample.socket_pids if pid in pids}
        mine.update(b.sk_ino for b in drops.buckets if b.sk_ino and b.sk_cgroup in cgroups)
        drops = _drops(drops, mine, endpoints)
    flows = sample.flows
    if flows is not None:
        held = tuple(f for f in flows.flows if endpoints.hold(f.proto, f.daddr, f.dport))
        flows = dataclasses.replace(flows, flows=held, rest=FlowsOther())
    return dataclasses.replace(
        sample,
        latency=latency,
        sends=tuple(s for s in sample.sends if s.pid in pids) if sample.sends is not None else None,
        drops=drops,
        flows=flows,
        socket_pids=tuple((ino, pid) for ino, pid in sample.socket_pids if pid in pids),
        socket_owners=tuple(o for o in sample.socket_owners if o.pid in pids),
    )


def _drops(drops: DropsSample, sockets: Collection[int], endpoints: Endpoints) -> DropsSample:
    """Drops at those sockets (inodes): their buckets, the reasons summed from them, and the
    logged drops addressed to one of the `endpoints`."""
    buckets = tuple(b for b in drops.buckets if b.sk_ino in sockets)
    per_reason: dict[int, list[int]] = {}
    for b in buckets:
        counts = per_reason.setdefault(b.reason, [0] * len(b.per_cpu))
        per_reason[b.reason] = [a + n for a, n in zip(counts, b.per_cpu, strict=True)]
    named = {r.reason: r for r in drops.reasons}
    reasons = tuple(
        DropReasonCount(
            reason,
            named[reason].name if reason in named else str(reason),
            named[reason].subsystem if reason in named else "",
            tuple(counts),
        )
        for reason, counts in per_reason.items()
    )
    events = tuple(e for e in drops.events if endpoints.hold(e.l4proto, e.daddr, e.dport))
    return dataclasses.replace(
        drops, reasons=reasons, buckets=buckets, events=events, logged=len(events), unbucketed=0
    )
