"""Running totals since netscope started, from the stream of per-interval samples: what a
Prometheus scrape reads. Pure; label sets stay bounded (CPUs, vectors, IRQ lines, drop reasons,
device queues; never flows).

Copy latency becomes a cumulative histogram on fixed bounds: each log-linear bucket of the kernel's
histogram is counted under the first bound at or above its upper end, so a count is never put
below its true value (a bucket straddling a bound is counted above it).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netscope.model.balance import BalanceLedger
from netscope.model.containers import OTHER, ContainerSeries, container_of
from netscope.model.cpu import interrupt_counts, softirq_runs
from netscope.model.drops import reason_label
from netscope.model.latency import PROC_BITS, bucket_range
from netscope.model.processes import arrivals_by_owner, drops_by_owner
from netscope.model.rings import build_rings_view
from netscope.model.sample import QDISC_COUNTERS, HostInfo, ProbeState, Sample
from netscope.model.tx import tc_handle

LATENCY_BOUNDS_S = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


# The tcp probe's counts per connection end that export sums per namespace (no per-connection label).
TCP_EVENTS = ("retransmits", "resets_sent", "resets_received", "zero_rcv_wnd")
# The device's own loss counters (stats64) that export serves: rx_missed, rx_over and rx_fifo are
# the NIC's ring overruns; rx_dropped and tx_dropped what the stack or driver dropped.
DEVICE_LOSSES = ("rx_dropped", "tx_dropped", "rx_missed", "rx_over", "rx_fifo")
# A device unread this long is gone and its series end: on a container host veths come and go all
# day, and a series kept for each would grow without bound. (One that comes back starts again from
# 0, which Prometheus's rate() takes as a counter reset.)
DEVICE_GONE_S = 60.0


@dataclass
class RunningTotals:
    info: HostInfo
    samples: int = 0
    softirq_runs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (cpu, vector)
    softirq_ns: Counter[tuple[str, str]] = field(default_factory=Counter)  # sampled runs, estimated
    cpu_softirq_ns: Counter[str] = field(default_factory=Counter)  # per CPU, /proc/stat
    hardirqs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (irq, name)
    napi: Counter[tuple[str, str]] = field(default_factory=Counter)  # (cpu, what)
    softnet: Counter[tuple[str, str]] = field(default_factory=Counter)  # (cpu, what)
    drops: Counter[str] = field(default_factory=Counter)  # reason label
    queues: Counter[tuple[str, str, str, str, str]] = field(default_factory=Counter)
    devices: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (device, netns, what)
    snmp: Counter[str] = field(default_factory=Counter)  # "Udp.NoPorts"
    # (device, netns, kind, handle, what): what is packets, bytes, drops, requeues or overlimits
    qdiscs: Counter[tuple[str, str, str, str, str]] = field(default_factory=Counter)
    # Gauges as of the newest interval: (device, netns, kind, handle) -> (qlen, backlog bytes), and
    # (device, netns, tx queue) -> (BQL inflight, limit) bytes
    qdisc_queued: dict[tuple[str, str, str, str], tuple[int, int]] = field(default_factory=dict)
    bql: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    # (netns, what): TCP_EVENTS of the connections' ends in that namespace (the tcp probe's)
    tcp: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (netns, stage, what): what is "in", "out", "silent_loss" or "lost:<cause>" (model/balance.py)
    balance: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _ledger: BalanceLedger = field(default_factory=BalanceLedger)
    copy_latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    stack_latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    # (probe, program, what) over the intervals bpf_stats measured: a sample, not every run
    programs: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    lost_events: dict[str, int] = field(default_factory=dict)  # per probe, the probe's own total
    recursion_misses: dict[str, int] = field(default_factory=dict)  # likewise
    not_counted: dict[str, int] = field(default_factory=dict)  # likewise
    evicted: dict[str, int] = field(default_factory=dict)  # likewise
    probes_live: dict[str, bool] = field(default_factory=dict)
    probes_failed: dict[str, bool] = field(default_factory=dict)  # asked for, and could not attach
    # Gauges as of the newest interval: (device, netns) -> (rx ring, its max) descriptors; the
    # numeric tunables the findings name; each probe's 1-in-N; netscope's BPF share of a CPU, as
    # bpf_stats last measured it (None: not yet)
    rings: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    sysctls: dict[str, float] = field(default_factory=dict)
    sample_rates: dict[str, int] = field(default_factory=dict)
    bpf_cpu_share: float | None = None
    last_ts: float = 0.0  # the newest interval's end (UNIX epoch seconds)
    _device_seen: dict[tuple[str, str], float] = field(default_factory=dict)  # when each was last read
    # (container, what): what is "rx_packets", "reads", "read_bytes", "sent_bytes" or
    # "drops:<reason>"; at most CONTAINERS_MAX
    # containers and "other" (model/containers.py ContainerSeries)
    containers: Counter[tuple[str, str]] = field(default_factory=Counter)
    _series: ContainerSeries = field(default_factory=ContainerSeries)

    def add(self, sample: Sample) -> None:
        self.samples += 1
        self.last_ts = sample.ts
        cpus = [str(c) for c in self.info.cpus]
        names = dict(sample.netns_names)
        for cpu_id, runs in (softirq_runs(sample) or {}).items():
            for vector, n in zip(sample.softirq_names, runs, strict=False):
                self.softirq_runs[(str(cpu_id), vector)] += n
        for soft in sample.softirq or ():
            for vector, ns in zip(sample.softirq_names, soft.time_ns, strict=False):
                self.softirq_ns[(str(soft.cpu), vector)] += ns
        for t in sample.proc_cpu_times:
            self.cpu_softirq_ns[str(t.cpu)] += t.softirq_ns
        lines = {line.irq: line.name for line in sample.irq_lines}
        for irq in interrupt_counts(sample) or ():
            self.hardirqs[(str(irq.irq), lines.get(irq.irq, ""))] += sum(irq.per_cpu)
        for napi in sample.napi or ():
            for cpu, polls, packets, full in zip(
                cpus, napi.polls, napi.packets, napi.budget_exhausted, strict=False
            ):
                self.napi[(cpu, "polls")] += polls
                self.napi[(cpu, "packets")] += packets
                self.napi[(cpu, "budget_exhausted")] += full
        for net in sample.softnet:
            self.softnet[(str(net.cpu), "processed")] += net.processed
            self.softnet[(str(net.cpu), "dropped")] += net.dropped
            self.softnet[(str(net.cpu), "time_squeeze")] += net.time_squeeze
        if sample.drops is not None:
            for reason in sample.drops.reasons:
                self.drops[reason_label(reason.subsystem, reason.name)] += sum(reason.per_cpu)
        for d in build_rings_view(sample, self.info).devices:
            netns = "" if d.netns in (0, self.info.netns) else names.get(d.netns, str(d.netns))
            if d.stats is not None and d.stats.rx_bytes is not None:
                for what in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes"):
                    self.devices[(d.ifname, netns, what)] += getattr(d.stats, what) or 0
            for q in d.queues:
                queue = str(q.queue) if q.queue >= 0 else "unknown"
                for direction in ("rx", "tx"):
                    key = (d.ifname, netns, direction, queue)
                    self.queues[(*key, "packets")] += getattr(q, f"{direction}_packets")
                    self.queues[(*key, "bytes")] += getattr(q, f"{direction}_bytes")
        for c in sample.snmp:
            self.snmp[f"{c.group}.{c.name}"] += c.count
        self._add_tx(sample)
        for end in sample.tcp.conns if sample.tcp else ():
            netns = "" if end.netns in (0, self.info.netns) else names.get(end.netns, str(end.netns))
            for what in TCP_EVENTS:
                self.tcp[(netns, what)] += getattr(end, what)
        balance, silent = self._ledger.add(sample)

        def label(netns: int) -> str:
            return "" if netns in (0, self.info.netns) else names.get(netns, str(netns))

        for row in balance:
            self.balance[(label(row.netns), row.stage, "silent_loss")] += 0  # a series from the start
            self.balance[(label(row.netns), row.stage, "in")] += row.in_
            self.balance[(label(row.netns), row.stage, "out")] += row.out
            for cause, n in row.lost:
                self.balance[(label(row.netns), row.stage, f"lost:{cause}")] += n
        for row in silent:  # the previous interval's, confirmed
            self.balance[(label(row.netns), row.stage, "silent_loss")] += row.beyond_noise
        if sample.latency is not None:
            add_to_bounds(self.copy_latency, (b for p in sample.latency.processes for b in p.buckets))
        if sample.stack is not None:
            add_to_bounds(self.stack_latency, sample.stack.buckets)
        if sample.cost is not None and sample.cost.measured_age_s == 0.0:  # a fresh measurement
            for cost in sample.cost.programs:
                self.programs[(cost.probe, cost.program, "runs")] += cost.runs
                self.programs[(cost.probe, cost.program, "ns")] += cost.run_time_ns
        self._add_containers(sample)
        self._add_gauges(sample)
        self._forget_gone_devices(sample.ts)
        for status in sample.probes:
            self.lost_events[status.name] = max(self.lost_events.get(status.name, 0), status.lost_events)
            for totals, n in (
                (self.recursion_misses, status.recursion_misses),
                (self.not_counted, status.not_counted),
                (self.evicted, status.evicted),
            ):
                totals[status.name] = max(totals.get(status.name, 0), n)
            self.probes_live[status.name] = status.state == ProbeState.LIVE
            self.probes_failed[status.name] = status.state == ProbeState.FAILED

    def _add_tx(self, sample: Sample) -> None:
        """Every qdisc's counters (tc -s) and, as gauges, what the qdiscs hold and the BQL of the
        TX queues, as the newest interval read them (a device not read keeps its last)."""
        names = dict(sample.netns_names)
        for d in sample.devices:
            netns = "" if d.netns in (0, self.info.netns) else names.get(d.netns, str(d.netns))
            for q in d.qdiscs:
                key = (d.ifname, netns, q.kind, tc_handle(q.handle))
                for what in QDISC_COUNTERS:
                    self.qdiscs[(*key, what)] += getattr(q, what)
                self.qdisc_queued[key] = (q.qlen, q.backlog)
            for queue, inflight, limit in d.bql:
                self.bql[(d.ifname, netns, str(queue))] = (inflight, limit)
            for what in DEVICE_LOSSES:
                self.devices[(d.ifname, netns, what)] += getattr(d, what)
            if d.rx_ring is not None:
                self.rings[(d.ifname, netns)] = (d.rx_ring, d.rx_ring_max or d.rx_ring)
            self._device_seen[(d.ifname, netns)] = sample.ts

    def _add_gauges(self, sample: Sample) -> None:
        for name, value in sample.tunables:
            with contextlib.suppress(ValueError):  # one number: tcp_rmem's three are not a gauge
                self.sysctls[name] = float(value)
        for status in sample.probes:
            self.sample_rates[status.name] = status.sample_rate
        if sample.cost is not None and sample.cost.bpf_stats:
            self.bpf_cpu_share = sample.cost.bpf_cpu_share(sample.interval_s)

    def _forget_gone_devices(self, now: float) -> None:
        """End the series of devices unread for DEVICE_GONE_S (and of namespaces with none left)."""
        gone = {key for key, seen in self._device_seen.items() if now - seen > DEVICE_GONE_S}
        if not gone:
            return
        for key in gone:
            del self._device_seen[key]
        netns_left = {netns for _, netns in self._device_seen} | {""}
        by_device: tuple[MutableMapping[Any, Any], ...] = (
            self.devices,
            self.queues,
            self.qdiscs,
            self.qdisc_queued,
            self.bql,
            self.rings,
        )
        for table in by_device:
            _forget(table, lambda key: key[:2] in gone)
        by_netns: tuple[MutableMapping[Any, Any], ...] = (self.tcp, self.balance)
        for table in by_netns:
            _forget(table, lambda key: key[0] not in netns_left)

    def _add_containers(self, sample: Sample) -> None:
        """Reads, bytes read, bytes sent and drops of the processes in containers, per container
        (series bounded: ContainerSeries); a container's series ends when its cgroup is removed."""
        facts = {f.pid: f.cgroup for f in sample.processes}

        def label(pid: int) -> str:
            return container_label(facts.get(pid, ""))

        if sample.cgroups_gone is not None:
            self._series.ends_told()
            for path in sample.cgroups_gone:
                self._series.end(container_label(path))
        by_container: Counter[tuple[str, str]] = Counter()
        latency = sample.latency
        cgroups = dict(sample.cgroups)  # a process gone from /proc: the cgroup it sent or read from
        read_from = {p.pid: cgroups.get(p.cgroup_id, "") for p in latency.processes} if latency else {}

        def reader_label(pid: int) -> str:
            return label(pid) if pid in facts else container_label(read_from.get(pid, ""))

        for p in latency.processes if latency else ():
            by_container[(reader_label(p.pid), "reads")] += p.reads
            by_container[(reader_label(p.pid), "read_bytes")] += p.bytes
        if latency is not None:
            readers = ((p.pid, p.arrivals) for p in latency.processes)
            by_pid, by_cgroup = arrivals_by_owner(readers, latency.unread_arrivals, sample.socket_pids)
            for pid, n in by_pid.items():
                by_container[(reader_label(pid), "rx_packets")] += n
            for cgroup, n in by_cgroup.items():  # sockets no process was found holding
                by_container[(container_label(cgroups.get(cgroup, "")), "rx_packets")] += n
        for s in sample.sends or ():
            path = facts.get(s.pid) or cgroups.get(s.cgroup_id, "")
            by_container[(container_label(path), "sent_bytes")] += s.bytes
        # A drop's container: its process's (as the rows have it), else where no process holding
        # the socket was found (gone since), its socket's own cgroup's (sk_cgrp_data).
        owners = drops_by_owner(sample.drops, dict(sample.socket_pids), cgroups)
        for (pid, path), reasons in owners.items():
            where = label(pid) if pid in facts else container_label(path)
            for reason, n in reasons.items():
                by_container[(where, f"drops:{reason}")] += n
        for (container, what), n in by_container.items():
            if container:
                self.containers[(self._series.label(container, sample.ts), what)] += n
        kept = self._series.labels() | {OTHER}
        for key in [k for k in self.containers if k[0] not in kept]:
            del self.containers[key]


def container_label(cgroup: str) -> str:
    """The export's label of the container a cgroup v2 path is in ("" for none, or not known)."""
    container = container_of(cgroup) if cgroup else None
    if container is None:
        return ""
    return f"{container.runtime}:{container.short_id}" if container.id else f"pod:{container.pod_uid}"


def add_to_bounds(counts: list[int], buckets: Iterable[tuple[int, int]]) -> None:
    """Add (log-linear bucket index, count) pairs, in nanoseconds, to per-bound counts (the last
    slot is above every bound)."""
    for index, count in buckets:
        high_s = bucket_range(index, PROC_BITS)[1] / 1e9
        slot = next((i for i, bound in enumerate(LATENCY_BOUNDS_S) if high_s <= bound), len(LATENCY_BOUNDS_S))
        counts[slot] += count


def cumulative(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus buckets: ("le", cumulative count) up to "+Inf"."""
    out, running = [], 0
    for bound, count in zip((*(f"{b:g}" for b in LATENCY_BOUNDS_S), "+Inf"), counts, strict=True):
        running += count
        out.append((bound, float(running)))
    return out


def _forget(table: MutableMapping[Any, Any], gone: Callable[[tuple[str, ...]], bool]) -> None:
    for key in [k for k in table if gone(k)]:
        del table[key]
