"""Who receives and who sends: one row per process that read from its sockets in the interval (the
copy-latency probe's readers), sent through them (the send probe's senders) or had packets dropped
at one of them (the drop reasons' socket, its process found in /proc), with its container or
systemd unit, its network namespace and its socket count, and the same rows summed per container.
Pure: built from a LatencyView, the senders, the sample's drops, ProcessFacts and the sockets'
processes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from netscope.model.containers import container_of, unit_of
from netscope.model.drops import reasons_by
from netscope.model.latency import LatencyView
from netscope.model.sample import DropsSample, ProcessFacts, ProcSend

NO_PROCESS = "(no process)"  # the comm of what sockets no process was found holding had


@dataclass(frozen=True)
class ProcRow:
    """A process (or, grouped, a container: pid 0, `processes` of them; or pid 0, NO_PROCESS: the
    drops at and arrivals on sockets of that cgroup no process was found holding) over the
    interval."""

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
    drops: tuple[tuple[str, int], ...] = ()  # (drop reason, count) at its sockets, most first
    drops_per_s: float = 0.0
    tx_bytes_per_s: float = 0.0  # sent through its sockets (sock:sock_send_length)
    cgroup: str = ""  # its cgroup v2 path ("" unknown; grouped: the members' where they share one)
    tx_estimated: bool = False  # the sends sampled (1 in N) or counted for part of the interval
    container_name: str = ""  # its container's name, where the runtime's state files tell it
    # Data queued on its sockets a second (sock:sk_data_ready with new data: UDP datagrams),
    # estimated where the arrivals are sampled (`estimated`)
    rx_packets_per_s: float = 0.0

    @property
    def where(self) -> str:
        """Its group as a row shows it: the container's name before its label, where known."""
        return f"{self.container_name} ({self.group})" if self.container_name else self.group

    @property
    def busy(self) -> float:
        """Bytes a second both ways: what orders the rows."""
        return self.bytes_per_s + self.tx_bytes_per_s


# The Processes pane's orders (`s` cycles them; the first is the view's own): the busiest both ways,
# then by each column a user sorts a top-like list by.
PROC_SORTS: dict[str, Callable[[ProcRow], float | str]] = {
    "bytes": lambda r: -r.busy,
    "packets": lambda r: -r.rx_packets_per_s,
    "drops": lambda r: -r.drops_per_s,
    "copy p99": lambda r: -(r.p99_ns or 0),
    "sent": lambda r: -r.tx_bytes_per_s,
    "process": lambda r: r.comm,
}


def sorted_rows(rows: Iterable[ProcRow], name: str) -> tuple[ProcRow, ...]:
    """`rows` in the order PROC_SORTS names (ties: the busiest first, as the view has them)."""
    return tuple(sorted(rows, key=PROC_SORTS[name]))


@dataclass(frozen=True)
class ProcessesView:
    rows: tuple[ProcRow, ...]  # busiest (bytes/s read and sent) first
    groups: tuple[ProcRow, ...]  # the rows summed per container or unit, busiest first


def build_processes_view(
    latency: LatencyView | None,
    facts: Iterable[ProcessFacts],
    drops: DropsSample | None = None,
    socket_pids: Iterable[tuple[int, int]] = (),
    interval_s: float = 1.0,
    sends: Iterable[ProcSend] = (),
    send_rate: int = 1,
    cgroups: Iterable[tuple[int, str]] = (),
    names: Mapping[str, str] | None = None,
) -> ProcessesView:
    """`names`: the runtimes' names of containers and pods by id (sources/runtimes.py)."""
    by_pid: Mapping[int, ProcessFacts] = {f.pid: f for f in facts}
    paths = dict(cgroups)  # cgroup id -> its v2 path
    holders = dict(socket_pids)  # socket inode -> the process holding it
    dropped: dict[int, dict[str, int]] = {}
    sockets_path: dict[int, str] = {}  # pid -> its sockets' cgroup, for a process /proc did not tell
    # Drops at (and data queued on) sockets of no process found, by their own cgroup's path
    unheld: dict[str, dict[str, int]] = {}
    unheld_rx: dict[str, int] = {}
    for (pid, path), reasons in drops_by_owner(drops, holders, paths).items():
        if pid:
            _add(dropped.setdefault(pid, {}), reasons)
            sockets_path.setdefault(pid, path)
        elif path:
            _add(unheld.setdefault(path, {}), reasons)
    readers = {p.pid: p for p in latency.processes} if latency else {}
    arrived: dict[int, int] = {}
    if latency is not None:
        readers_arrived = ((p.pid, p.arrivals) for p in latency.processes)
        arrived, unheld_arrived = arrivals_by_owner(readers_arrived, latency.unread_arrivals, holders.items())
        for cgroup, n in unheld_arrived.items():
            if cgroup in paths:
                unheld.setdefault(paths[cgroup], {})
                unheld_rx[paths[cgroup]] = unheld_rx.get(paths[cgroup], 0) + n
    senders = {s.pid: s for s in sends}
    sampled = latency is not None and latency.sample_rate > 1  # its latencies from 1 arrival in N
    rows = []
    for pid in dict.fromkeys([*readers, *arrived, *senders, *dropped]):
        fact, reader, sender = by_pid.get(pid), readers.get(pid), senders.get(pid)
        # Its cgroup from /proc; a process gone since, from the cgroup it sent or read from, or
        # its sockets' (sk_cgrp_data, where packets were dropped at one).
        path = fact.cgroup if fact else paths.get(sender.cgroup_id, "") if sender else ""
        path = path or (paths.get(reader.cgroup_id, "") if reader else "") or sockets_path.get(pid, "")
        container = container_of(path) if path else None
        mine = tuple(sorted(dropped.get(pid, {}).items(), key=lambda kv: (-kv[1], kv[0])))
        rows.append(
            ProcRow(
                pid=pid,
                comm=reader.comm if reader else fact.comm if fact else sender.comm if sender else "",
                group=container.label if container else unit_of(path) if path else "",
                container_name=container.name_in(names or {}) if container else "",
                container=container is not None,
                netns=fact.netns if fact else 0,
                reads_per_s=reader.reads_per_s if reader else 0.0,
                bytes_per_s=reader.bytes_per_s if reader else 0.0,
                p50_ns=reader.stats.p50_ns if reader else None,
                p99_ns=reader.stats.p99_ns if reader else None,
                sockets=fact.sockets if fact else None,
                estimated=(reader is not None and reader.reads_estimated)
                or (sampled and (reader is not None or pid in arrived)),
                rx_packets_per_s=arrived.get(pid, 0) / (interval_s or 1.0),
                drops=mine,
                drops_per_s=sum(n for _, n in mine) / (interval_s or 1.0),
                tx_bytes_per_s=sender.bytes / (interval_s or 1.0) if sender else 0.0,
                tx_estimated=sender is not None and send_rate > 1,
                cgroup=path,
            )
        )
    for path, reasons in unheld.items():
        container = container_of(path)
        if container is None:
            continue  # (a socket of a process gone, in no container: nothing left to name)
        mine = tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        rows.append(
            ProcRow(
                pid=0,
                comm=NO_PROCESS,
                group=container.label,
                container_name=container.name_in(names or {}),
                container=True,
                netns=0,
                reads_per_s=0.0,
                bytes_per_s=0.0,
                p50_ns=None,
                p99_ns=None,
                sockets=None,
                estimated=path in unheld_rx and sampled,
                rx_packets_per_s=unheld_rx.get(path, 0) / (interval_s or 1.0),
                drops=mine,
                drops_per_s=sum(n for _, n in mine) / (interval_s or 1.0),
                cgroup=path,
            )
        )
    rows.sort(key=lambda r: (-r.busy, -r.drops_per_s, -r.rx_packets_per_s, r.pid))
    return ProcessesView(tuple(rows), group_rows(rows))


def arrivals_by_owner(
    readers: Iterable[tuple[int, int]],
    unread: Iterable[tuple[int, int, int]],
    socket_pids: Iterable[tuple[int, int]],
) -> tuple[dict[int, int], dict[int, int]]:
    """Data queued on sockets over the interval, per process: (pid, arrivals) by the process that
    read each socket last, and (socket inode, cgroup id, arrivals) of sockets no process read yet,
    by the process holding the socket (/proc: (inode, pid)); and per cgroup id, what arrived at
    sockets no process was found holding (their own cgroup, sk_cgrp_data)."""
    by_pid = {pid: n for pid, n in readers if n}
    by_cgroup: dict[int, int] = {}
    holders = dict(socket_pids)
    for ino, cgroup, n in unread:
        pid = holders.get(ino)
        if pid is not None:
            by_pid[pid] = by_pid.get(pid, 0) + n
        elif cgroup:
            by_cgroup[cgroup] = by_cgroup.get(cgroup, 0) + n
    return by_pid, by_cgroup


def drops_by_owner(
    drops: DropsSample | None, socket_pids: Mapping[int, int], cgroups: Mapping[int, str]
) -> dict[tuple[int, str], dict[str, int]]:
    """The interval's drops at sockets, by reason (exact: every drop is counted), per (the process
    holding the socket, 0 where none was found; the socket's own cgroup v2 path, "" unknown)."""
    if drops is None:
        return {}
    return reasons_by(
        drops,
        lambda b: (socket_pids.get(b.sk_ino, 0), cgroups.get(b.sk_cgroup, "")) if b.sk_ino else None,
    )


def _add(into: dict[str, int], reasons: Mapping[str, int]) -> None:
    for name, n in reasons.items():
        into[name] = into.get(name, 0) + n


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
                rx_packets_per_s=sum(m.rx_packets_per_s for m in members),
                bytes_per_s=sum(m.bytes_per_s for m in members),
                p50_ns=slowest.p50_ns,
                p99_ns=slowest.p99_ns,
                sockets=sum(known) if known else None,
                estimated=any(m.estimated for m in members),
                processes=sum(1 for m in members if m.pid),
                drops=_summed(m.drops for m in members),
                drops_per_s=sum(m.drops_per_s for m in members),
                tx_bytes_per_s=sum(m.tx_bytes_per_s for m in members),
                tx_estimated=any(m.tx_estimated for m in members),
                cgroup=paths.pop() if len(paths := {m.cgroup for m in members}) == 1 else "",
                container_name=members[0].container_name,
            )
        )
    out.sort(key=lambda r: (-r.busy, -r.drops_per_s, r.group))
    return tuple(out)


def _summed(drops: Iterable[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    total: dict[str, int] = {}
    for pairs in drops:
        for name, n in pairs:
            total[name] = total.get(name, 0) + n
    return tuple(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))
