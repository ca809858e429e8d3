"""Who receives: one row per process that read from its sockets in the interval (the copy-latency
probe's readers), with its container or systemd unit, its network namespace and its socket count
(/proc), and the same rows summed per container. Pure: built from a LatencyView and the sample's
ProcessFacts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netscope.model.containers import container_of, unit_of
from netscope.model.latency import LatencyView
from netscope.model.sample import ProcessFacts


@dataclass(frozen=True)
class ProcRow:
    """A process (or, grouped, a container: pid 0, `processes` of them) over the interval."""

    pid: int
    comm: str
    group: str  # its container's label, else its systemd unit, else its cgroup path ("" unknown)
    container: bool  # whether `group` is a container (or a pod)
    netns: int  # inode (0: unknown)
    reads_per_s: float
    bytes_per_s: float
    p50_ns: float | None  # copy latency of its reads (grouped: the slowest member's)
    p99_ns: float | None
    sockets: int | None  # socket fds (None: its /proc was not read)
    estimated: bool  # reads and bytes counted for part of the interval, or latency from a sample
    processes: int = 1


@dataclass(frozen=True)
class ProcessesView:
    rows: tuple[ProcRow, ...]  # busiest (bytes/s) first
    groups: tuple[ProcRow, ...]  # the rows summed per container or unit, busiest first


def build_processes_view(latency: LatencyView, facts: Iterable[ProcessFacts]) -> ProcessesView:
    by_pid: Mapping[int, ProcessFacts] = {f.pid: f for f in facts}
    rows = []
    for p in latency.processes:
        fact = by_pid.get(p.pid)
        path = fact.cgroup if fact else ""
        container = container_of(path) if fact else None
        rows.append(
            ProcRow(
                pid=p.pid,
                comm=p.comm,
                group=container.label if container else unit_of(path) if fact else "",
                container=container is not None,
                netns=fact.netns if fact else 0,
                reads_per_s=p.reads_per_s,
                bytes_per_s=p.bytes_per_s,
                p50_ns=p.stats.p50_ns,
                p99_ns=p.stats.p99_ns,
                sockets=fact.sockets if fact else None,
                estimated=p.reads_estimated or latency.sample_rate > 1,
            )
        )
    rows.sort(key=lambda r: (-r.bytes_per_s, r.pid))
    return ProcessesView(tuple(rows), group_rows(rows))


def group_rows(rows: Iterable[ProcRow]) -> tuple[ProcRow, ...]:
    """Rows summed per group (container, unit or cgroup path): rates and sockets added, the
    slowest member's latency, the namespace where they all share one (else 0)."""
    groups: dict[str, list[ProcRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    out = []
    for name, members in groups.items():
        netns = {m.netns for m in members}
        slowest = max(members, key=lambda m: m.p99_ns or 0.0)
        known = [m.sockets for m in members if m.sockets is not None]
        out.append(
            ProcRow(
                pid=0,
                comm=", ".join(sorted({m.comm for m in members})),
                group=name,
                container=members[0].container,
                netns=netns.pop() if len(netns) == 1 else 0,
                reads_per_s=sum(m.reads_per_s for m in members),
                bytes_per_s=sum(m.bytes_per_s for m in members),
                p50_ns=slowest.p50_ns,
                p99_ns=slowest.p99_ns,
                sockets=sum(known) if known else None,
                estimated=any(m.estimated for m in members),
                processes=len(members),
            )
        )
    out.sort(key=lambda r: (-r.bytes_per_s, r.group))
    return tuple(out)
