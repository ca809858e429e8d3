"""The live source: BPF probes plus the kernel's own counters in /proc, sysfs and netlink.

Each interval it reads, in this order: the kernel's counters (kernel_counters.READERS, each filling
the Sample fields it names: the interval is the time between two of their reads), every probe's
maps (probe_set.py: each probe fills the Sample field it names), netscope's own cost (bpf_cost.py),
then the devices of the namespaces that carry traffic (namespaces.py). This module only puts them
together."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from typing import Any

from netscope.model.containers import container_of
from netscope.model.filter import Filter, Scope
from netscope.model.flows import FLOWS_MAX, FLOWS_TOP
from netscope.model.sample import (
    PROBE_LINGER_S,
    PROC_COUNTS,
    DropsSample,
    LatencySample,
    ProbeState,
    ProbeStatus,
    ProcessFacts,
    ProcSend,
    Sample,
    SocketOwner,
)
from netscope.model.sampling import Rate, RateController
from netscope.probes.base import KernelScope, ProbeOptions
from netscope.probes.btf import BTFError, kernel_btf
from netscope.probes.drops import DEFAULT_LOG_RATE, reason_names
from netscope.probes.registry import PROBES
from netscope.sources import procfs, runtimes
from netscope.sources.bpf_cost import STATS_EVERY, BpfCost
from netscope.sources.kernel_counters import READERS
from netscope.sources.lookup import LookupCache
from netscope.sources.namespaces import Namespaces, interfaces_everywhere, namespaces_in
from netscope.sources.probe_set import ProbeSet
from netscope.sources.readings import ReadGaps

PROCESSES_READ = 64  # readers whose cgroup, namespace and sockets are read from /proc each interval
SOCKET_PIDS_EVERY_S = 2.0  # a socket with drops whose process was not found is looked up again this often
SOCKET_PIDS_KEPT_S = 30.0  # and a socket's process is remembered this long after its last drop
CGROUPS_EVERY_S, CGROUPS_KEPT_S = 5.0, 60.0  # the same for the senders' cgroups' paths
NAMES_EVERY_S, NAMES_KEPT_S = 10.0, 300.0  # and for the names of containers and pods

__all__ = ["PROBES", "STATS_EVERY", "LiveSource", "interfaces_everywhere"]


class LiveSource:
    live = True
    replay = None  # now cannot be sought

    def __init__(
        self,
        drop_log_rate: int = DEFAULT_LOG_RATE,
        flow_filter: Filter | None = None,
        linger_s: float = PROBE_LINGER_S,
        detail_every: int = 1,
        bpf: bool = True,
        sample_rate: int | Rate | None = None,
        max_flows: int = FLOWS_MAX,
        flows_top: int | None = FLOWS_TOP,
    ) -> None:
        self.info = procfs.read_host_info()
        # False (--no-bpf): no probe ever starts; the kernel's own counters (/proc, netlink) only.
        self.bpf = bpf
        # Per-packet hooks run for one interval in `detail_every` and are paused between.
        self.detail_every = detail_every
        self._samples_taken = 0
        # 1 in N of the per-packet runs does the whole work; N follows the budget unless forced
        # (--sample N; a Rate also forces the share of each interval the per-packet hooks are on).
        forced = Rate(sample_rate) if isinstance(sample_rate, int) else sample_rate
        self.rates = RateController(forced=forced)
        # The flows table's size in the kernel, and the busiest flows decoded in full per interval
        # (None: all): a view's cost follows what it shows.
        options = ProbeOptions(drop_log_rate, max_flows, flows_top)
        self.probes = ProbeSet(self.info.cpus, options, flow_filter, self.rates, linger_s, self._prepare_cost)
        self.cost = BpfCost(self.probes, self.rates, detail_every)
        self._gaps = ReadGaps()
        self.readers = [reader(self.info, self._gaps) for reader in READERS]
        self.namespaces = Namespaces(self.info, self._gaps, self.probes.notes)
        self._last = time.monotonic()
        # socket inode -> (pid, when its socket last dropped), of sockets with drops
        self._socket_pid_cache = LookupCache(procfs.read_socket_pids, SOCKET_PIDS_EVERY_S, SOCKET_PIDS_KEPT_S)
        self._cgroup_cache = LookupCache(procfs.cgroup_paths_here, CGROUPS_EVERY_S, CGROUPS_KEPT_S)
        self._name_cache = LookupCache(runtimes.container_names, NAMES_EVERY_S, NAMES_KEPT_S)
        self._containers_seen: set[str] = set()  # cgroup v2 paths of containers, until removed
        self._scope = flow_filter.scope if flow_filter else Scope()
        self._scope_walked = -CGROUPS_EVERY_S  # when the scope's containers' cgroups were looked for
        try:
            self._cgroup2 = procfs.cgroup2_mount()
        except OSError:
            self._cgroup2 = None

    def _prepare_cost(self) -> None:
        self.cost.prepare()

    @property
    def notes(self) -> list[str]:
        """Non-fatal set-up problems, for the user."""
        return self.probes.notes

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """See ProbeSet.need; nothing with --no-bpf."""
        return self.probes.need(names) if self.bpf else ()

    def set_flow_filter(self, flt: Filter | None) -> None:
        scope = flt.scope if flt else Scope()
        if scope != self._scope:
            self._scope, self._scope_walked = scope, -CGROUPS_EVERY_S
            self._push_scope()
        self.probes.set_flow_filter(flt)

    def _push_scope(self) -> None:
        """The process scope into the kernel's hooks (probes with `scoped`): its pids, and the
        cgroup v2 ids of its containers' directories, looked for at once when the scope changes,
        then again every CGROUPS_EVERY_S (a container started since)."""
        if not self._scope:
            self.probes.set_scope(None)
            return
        now = time.monotonic()
        if now - self._scope_walked < CGROUPS_EVERY_S:
            return
        self._scope_walked = now
        cgroups: frozenset[int] = frozenset()
        if self._scope.containers and self._cgroup2 is not None:
            try:
                found = procfs.container_cgroups(self._cgroup2)
            except OSError:
                found = {}
            keys = {k for c in found.values() for k in (c.id, c.pod_uid) if k}
            names = self._name_cache.get(keys) if keys else {}
            cgroups = frozenset(i for i, c in found.items() if self._scope.holds_container(c, names))
        self.probes.set_scope(KernelScope(self._scope.pids, cgroups))

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        self.probes.watch_flow(flow)

    def statuses(self) -> tuple[ProbeStatus, ...]:
        if not self.bpf:
            return tuple(ProbeStatus(name, ProbeState.OFF) for name in PROBES)
        return self.probes.statuses()

    def sample(self) -> Sample:
        self.probes.detach_unneeded()
        self._push_scope()
        index = self._samples_taken  # of the interval this sample starts; 0 after the baseline
        measure_next = index % self.detail_every == 0
        if measure_next:  # before the interval starts, so the hooks cover all of it
            self.probes.set_per_packet(on=True)
        # The kernel's own counters first, at the interval's boundary: the interval is the time
        # between two of their reads (the probes' maps are read right after).
        now = time.monotonic()
        start, self._last = self._last, now
        wall = time.time()
        self._gaps.begin()
        counted: dict[str, Any] = {}
        for reader in self.readers:
            counted.update(reader.read())
        measured = self.bpf and self.probes.measured_since(start)
        polled = self.probes.poll(start, measured, sum(s.processed for s in counted["softnet"]))
        if not measure_next:
            self.probes.set_per_packet(on=False)
        self._samples_taken += 1
        interval_s = now - start
        if measured:  # hooks paused all the interval (--detail-every) tell nothing of the load:
            self.probes.adapt_rates(interval_s)  # the rates stay as the last measured one left them
        cost = self.cost.cost(interval_s, index)
        self.probes.duty_cycle(interval_s, time.monotonic() - now, self.cost.take_stats_at())
        # The probes' counts are taken: from here on nothing may raise and lose them.
        seen = namespaces_in(polled["drops"], polled["queues"], polled["flows"])
        self.namespaces.carried(seen)
        devices = self.namespaces.devices()
        irqs = frozenset(line.irq for line in counted["irq_lines"])
        if (
            alive := self.namespaces.alive(irqs if PROC_COUNTS not in self._gaps.failed else None)
        ) is not None:
            self.probes.prune(alive)
        # /proc's processes after the devices' counters, which are read as near the edge as can be.
        socket_pids = self._socket_pids(polled["drops"], polled["latency"])
        facts = self._process_facts(polled["latency"], polled["sends"], socket_pids)
        cgroups = self._cgroups(polled["sends"], facts, polled["drops"], polled["latency"])
        paths = [f.cgroup for f in facts] + [p for _, p in cgroups]
        return Sample(
            netns_names=self.namespaces.names(seen | {d.netns for d in devices}),
            ts=wall,
            interval_s=interval_s,
            probes=self.statuses(),
            devices=devices,
            netns_snmp=self.namespaces.netns_snmp,
            socket_owners=self._socket_owners() if polled["flows"] else (),
            processes=facts,
            socket_pids=tuple(sorted(socket_pids.items())),
            cgroups=cgroups,
            container_names=self._container_names(paths),
            cgroups_gone=self._containers_gone(paths),
            cost=cost,
            detail_every=self.detail_every,
            detail_measured=measured,
            tunables=self.namespaces.tunables(polled["drops"], counted["irq_lines"]),
            spans=tuple(sorted(self._gaps.spans.items())),
            read_failed=tuple(sorted(self._gaps.failed)),
            **counted,
            **polled,
        )

    def _socket_pids(self, drops: DropsSample | None, latency: LatencySample | None) -> dict[int, int]:
        """The processes holding the sockets packets were dropped at (their inodes in the drop
        breakdown) or queued on with no process reading them yet, looked up in /proc (every
        process's file descriptors) at once for a socket new here, again at most every
        SOCKET_PIDS_EVERY_S for one not found."""
        inodes = {b.sk_ino for b in drops.buckets if b.sk_ino} if drops else set()
        if latency is not None:
            inodes.update(ino for ino, _, _ in latency.unread_arrivals)
        return self._socket_pid_cache.get(inodes)

    def _cgroups(
        self,
        sends: tuple[ProcSend, ...] | None,
        facts: tuple[ProcessFacts, ...],
        drops: DropsSample | None,
        latency: LatencySample | None,
    ) -> tuple[tuple[int, str], ...]:
        """The cgroup v2 paths of the cgroups the senders sent from and the readers read from
        (bpf_get_current_cgroup_id), for those whose /proc was not read (gone since): the others'
        cgroup is in their facts; and of the sockets packets were dropped at or queued on unread
        (sk_cgrp_data). The hierarchy is walked for a cgroup new here, again at most every
        CGROUPS_EVERY_S for one not found."""
        read = {f.pid for f in facts}
        ids = {s.cgroup_id for s in sends or () if s.cgroup_id and s.pid not in read}
        if drops is not None:
            ids.update(b.sk_cgroup for b in drops.buckets if b.sk_cgroup)
        if latency is not None:
            ids.update(cgroup for _, cgroup, _ in latency.unread_arrivals if cgroup)
            ids.update(p.cgroup_id for p in latency.processes if p.cgroup_id and p.pid not in read)
        return tuple(sorted(self._cgroup_cache.get(ids).items())) if ids else ()

    def _containers_gone(self, paths: list[str]) -> tuple[str, ...] | None:
        """The containers seen (their cgroup v2 paths) whose cgroup directory is gone since: a
        container's end, when its export series ends (one stat per container seen, each interval).
        None without a cgroup v2 hierarchy."""
        if self._cgroup2 is None:
            return None
        self._containers_seen.update(p for p in paths if container_of(p) is not None)
        gone = tuple(sorted(p for p in self._containers_seen if not (self._cgroup2 / p.lstrip("/")).is_dir()))
        self._containers_seen.difference_update(gone)
        return gone

    def _container_names(self, paths: list[str]) -> tuple[tuple[str, str], ...]:
        """The names of the containers and pods of these cgroup paths, from the runtimes' state
        files (sources/runtimes.py): looked for once, again at most every NAMES_EVERY_S for one
        not named."""
        keys: set[str] = set()
        for path in paths:
            if (c := container_of(path)) is not None:
                keys.update(k for k in (c.id, c.pod_uid) if k)
        return tuple(sorted(self._name_cache.get(keys).items())) if keys else ()

    @staticmethod
    def _process_facts(
        latency: LatencySample | None, sends: tuple[ProcSend, ...] | None, socket_pids: dict[int, int]
    ) -> tuple[ProcessFacts, ...]:
        """The copy-latency probe's readers and the send probe's senders, busiest first (at most
        PROCESSES_READ of each), and the processes holding sockets with drops: their cgroup,
        namespace and sockets, from /proc."""
        readers = sorted(latency.processes, key=lambda p: -p.bytes)[:PROCESSES_READ] if latency else []
        senders = sorted(sends or (), key=lambda p: -p.bytes)[:PROCESSES_READ]
        pids = dict.fromkeys(
            [*(p.pid for p in readers), *(p.pid for p in senders), *sorted(set(socket_pids.values()))]
        )
        try:
            return procfs.read_process_facts(list(pids)[: 3 * PROCESSES_READ])
        except Exception:  # /proc trouble must not cost the probes' counts
            return ()

    @staticmethod
    def _socket_owners() -> tuple[SocketOwner, ...]:
        try:
            return procfs.read_socket_owners()
        except Exception:  # psutil trouble must not cost the probes' counts
            return ()

    def describe(self) -> dict[str, Any]:
        """The box beyond HostInfo, for a recording's header: the kernel's drop-reason names and
        every device of netscope's namespace with its driver and ring sizes (what is unreadable is
        left out)."""
        described: dict[str, Any] = {"cpu_count": len(self.info.cpus)}
        with contextlib.suppress(BTFError, OSError):
            names = reason_names(kernel_btf())
            described["drop_reasons"] = {
                str(code): names.label(code) for code in (*names.core, *names.subsystem_reasons)
            }
        with contextlib.suppress(Exception):  # netlink trouble leaves the devices out
            described["interfaces"] = [
                {
                    "ifindex": link.ifindex,
                    "name": link.ifname,
                    "driver": link.driver,
                    "rings": dict(zip(("rx", "rx_max", "tx", "tx_max"), link.rings, strict=True)),
                }
                for link in self.namespaces.links.read({self.info.netns: None})
            ]
        return described

    def close(self) -> None:
        self.cost.close()
        self.probes.close()
        self.namespaces.close()
