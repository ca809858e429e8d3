"""The live source: BPF probes plus the kernel's own counters in /proc and sysfs."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from netscope.model.filter import Filter
from netscope.model.findings import NETFILTER_DROP
from netscope.model.flows import FLOWS_MAX, FLOWS_TOP
from netscope.model.sample import (
    CPU_TIMES,
    DEVICES,
    PROBE_LINGER_S,
    PROC_COUNTS,
    SNMP,
    SOFTNET,
    DeviceStats,
    DropsSample,
    FlowsSample,
    IrqLine,
    OwnCost,
    ProbeState,
    ProbeStatus,
    ProcCpuTime,
    ProcIrqCount,
    ProcSoftirqCpu,
    ProgramCost,
    QueueCount,
    Sample,
    SnmpCount,
    SocketOwner,
    SoftnetCpu,
)
from netscope.model.sampling import Load, Rate, RateController
from netscope.probes.base import (
    Alive,
    Probe,
    bpf_stats_overhead_ns,
    daemon_timer,
    own_map_bytes,
    start_probes,
)
from netscope.probes.btf import BTFError, kernel_btf
from netscope.probes.drops import DEFAULT_LOG_RATE, DropsProbe, reason_names
from netscope.probes.flows import FlowsProbe
from netscope.probes.hardirq import HardirqProbe
from netscope.probes.headers import HeadersError, KernelHeaders, find_headers
from netscope.probes.latency import LatencyProbe
from netscope.probes.napi import NapiProbe
from netscope.probes.rings import RingsProbe
from netscope.probes.softirq import SoftirqProbe
from netscope.probes.stack import StackProbe
from netscope.probes.tracefs import ensure_tracefs
from netscope.sources import nft, procfs
from netscope.sources.irq import map_irq_name
from netscope.sources.netlink import LinkReader, LinkTotals, link_deltas
from netscope.sources.netns_sysfs import read_sysfs_in
from netscope.sources.procfs import NetnsRef

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
# RPS masks are a file per RX queue (hundreds on a host with many veths): read this often.
RPS_EVERY_S = 5.0


class ReadGaps:
    """When each of the kernel's counter sources was last read well. A read that fails is left out
    of its interval (marked: Sample.read_failed) and the reading before kept, so the next good
    read's delta spans back to it (Sample.spans): its rates divide by that, not by one interval."""

    def __init__(self) -> None:
        self._good_at: dict[str, float] = {}
        self._pending: set[str] = set()  # failed since their last good read
        self.spans: dict[str, float] = {}  # this interval's
        self.failed: set[str] = set()  # this interval's

    def begin(self) -> None:
        """A new interval's reads start."""
        self.spans, self.failed = {}, set()

    def good(self, source: str, at: float) -> None:
        if source in self._pending and source in self._good_at:
            self.spans[source] = at - self._good_at[source]
        self._pending.discard(source)
        self._good_at[source] = at

    def bad(self, source: str) -> None:
        self._pending.add(source)
        self.failed.add(source)


class Cumulative(Generic[T]):
    """A reading of cumulative counters, taken every interval: `step` gives the previous reading
    and this one. A reading that fails (a CPU or device going away mid-read) is empty, and the
    previous one is kept for the next interval: nothing is counted twice or made up (`gaps` says
    how long the next delta spans)."""

    def __init__(self, read: Callable[[], dict[Any, T]], source: str, gaps: ReadGaps) -> None:
        self._read = read
        self._source, self._gaps = source, gaps
        self._last: dict[Any, T] = {}
        self.step()

    def step(self) -> tuple[dict[Any, T], dict[Any, T]]:
        at = time.monotonic()
        try:
            now = self._read()
        except (OSError, ValueError):
            self._gaps.bad(self._source)
            return self._last, {}
        self._gaps.good(self._source, at)
        prev, self._last = self._last, now
        return prev, now


class Every(Generic[K, T]):
    """A reading too dear for every interval, `read(of)`: taken again once `seconds` have passed,
    or at once when what it reads (`of`) changed."""

    def __init__(self, seconds: float, read: Callable[[K], T]) -> None:
        self.seconds = seconds
        self._read = read
        self._taken: tuple[float, K, T] | None = None

    def get(self, of: K) -> T:
        now = time.monotonic()
        if self._taken is None or now - self._taken[0] >= self.seconds or of != self._taken[1]:
            self._taken = (now, of, self._read(of))
        return self._taken[2]


@dataclass(frozen=True)
class StatsWindow:
    """What one bpf_stats window measured: each program's runs and run time, over how long, when it
    ended, and the sampled probes' in-kernel rates while it was open."""

    programs: tuple[ProgramCost, ...]
    seconds: float
    ended: float
    rates: dict[str, int]


@dataclass(frozen=True)
class Counters:
    """The kernel's own counters over one interval (see LiveSource._counters)."""

    softnet: tuple[SoftnetCpu, ...]
    interrupts: tuple[ProcIrqCount, ...]
    softirqs: tuple[ProcSoftirqCpu, ...]
    cpu_times: tuple[ProcCpuTime, ...]
    snmp: tuple[SnmpCount, ...]


NETNS_RECHECK_S = 5.0
IRQ_NAMES_EVERY_S = 5.0
# The namespaces are listed this often (a /proc scan); their devices are read every interval, up to
# this many namespaces (those whose devices carry traffic first, the others in turn).
NETNS_SCAN_S = 2.0
DEVICES_NETNS_MAX = 32
STATS_EVERY = 10  # bpf_stats (netscope's own cost) is measured one interval in this many,
STATS_WINDOW_S = 0.25  # for this long,
STATS_DELAY = 0.4  # this share of an interval after the interval starts
MAP_MEMORY_EVERY_S = 5.0  # the BPF maps' memory is read again this often (every fd's fdinfo)
# A duty cycle's window counts `scale` times; it is calibrated to the kernel's count of the interval
# (factor: that count over the runs its samples' weights stand for) from 1/scale (the window saw a
# burst that filled only part of the interval) to this (a window that opened late or closed early,
# its timer held up while the sampler read 100k flows). Past it the window saw too little of what
# the kernel counted (a burst wholly outside it) for its mix of flows to stand for the interval's:
# its own weights stand (each moment of the interval is as likely as any other to be watched).
CALIBRATION_UP = 1.5
DUTY_MARGIN_S = 0.005  # a measured window opens this long after the duty-cycled hooks attach
# Every probe, in the order compiles are granted when several wait.
PROBES = ("hardirq", "softirq", "napi", "drops", "rings", "latency", "stack", "flows")
FILTERED = ("drops", "rings", "latency", "flows")  # the probes a flow filter is compiled into
PROBE_CLASSES: dict[str, type[Probe[Any]]] = {
    "hardirq": HardirqProbe,
    "softirq": SoftirqProbe,
    "napi": NapiProbe,
    "rings": RingsProbe,
    "stack": StackProbe,
    "latency": LatencyProbe,
    "flows": FlowsProbe,
}


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
        # The flows table's size in the kernel, and the busiest flows decoded in full per interval
        # (None: all): a view's cost follows what it shows.
        self.max_flows, self.flows_top = max_flows, flows_top
        # False (--no-bpf): no probe ever starts; the kernel's own counters (/proc, netlink) only.
        self.bpf = bpf
        # Per-packet hooks run for one interval in `detail_every` and are paused between: what a
        # long-running headless netscope costs on a busy box. 1: always on.
        self.detail_every = detail_every
        self._detail_since: float | None = 0.0  # when the per-packet hooks went on; None: paused
        self._detail_lock = threading.Lock()  # taken after _need_lock when both are, never before
        self._samples_taken = 0
        self.drop_log_rate = drop_log_rate
        self.flow_filter = flow_filter
        # 1 in N of the per-packet runs does the whole work; N follows the budget unless forced
        # (--sample N; a Rate also forces the share of each interval the per-packet hooks are on).
        forced = Rate(sample_rate) if isinstance(sample_rate, int) else sample_rate
        self.rates = RateController(forced=forced)
        # Every probe exists from the start (its status is shown) but is attached only while needed.
        self._probes: dict[str, Probe[Any]] = {name: self._make(name) for name in PROBES}
        self._needed: frozenset[str] = frozenset()
        self._unneeded_since: dict[str, float] = {}
        self._attached: set[str] = set()  # probes whose starter was handed out (one probe per name)
        self._need_lock = threading.Lock()
        self.linger_s = linger_s
        self.headers: KernelHeaders | None = None
        self.setup_error = ""
        self.notes: list[str] = []  # non-fatal set-up problems, for the user
        self._closed = threading.Event()
        self._prepare_lock = threading.Lock()
        self._prepared = False
        _, names = procfs.read_softirqs()
        self._softirq_names = tuple(names)
        self._gaps = ReadGaps()
        # The namespaces now, and the devices of those read last (for the probes to prune).
        self._alive_devices: tuple[frozenset[int], dict[int, frozenset[int]]] | None = None
        self._softnet = Cumulative(
            lambda: {s.cpu: s for s in procfs.read_softnet_stat()}, SOFTNET, self._gaps
        )
        self._snmp_counts = Cumulative(procfs.read_snmp_counters, SNMP, self._gaps)
        self._ticks = Cumulative(procfs.read_stat_interrupt_ticks, CPU_TIMES, self._gaps)
        self._nft_rules = Every(nft.NFT_EVERY_S, self._read_drop_rules)
        self._rps_masks = Every(RPS_EVERY_S, self._read_rps_masks)
        # IRQ lines named and mapped to devices (a sysfs file per line, a few per device): again
        # every few seconds, or at once when lines come or go.
        self._irq_names: Every[frozenset[int], tuple[IrqLine, ...]] = Every(
            IRQ_NAMES_EVERY_S, lambda _: irq_lines(procfs.read_interrupts()[1])
        )
        self._irq_lines: tuple[IrqLine, ...] = ()
        self._interrupts_prev: dict[int, tuple[int, ...]] = {}  # irq -> per CPU of info.cpus
        self._softirqs_prev: dict[int, tuple[int, ...]] = {}  # cpu -> runs per vector
        with contextlib.suppress(OSError, ValueError):
            self._kernel_counts()
        self._last = time.monotonic()
        self._interval_s = 0.0  # of the last interval sampled
        self._duty_timers: list[threading.Timer] = []
        self._live_since: dict[str, float] = {}
        self._netns_cache: dict[int, NetnsRef] = {}
        self._netns_checked = 0.0
        self._links = LinkReader(self.info.netns)
        self._bpf_stats_before: int | None = None  # kernel.bpf_stats_enabled before netscope set it
        self._clock_ns = 0.0  # what bpf_stats' own clock reads add to each run it measures
        self._own_cpu = procfs.read_own_usage()[0]
        self._program_totals: dict[tuple[str, str], tuple[int, int]] = {}
        self._measured: tuple[tuple[ProgramCost, ...], float, float] = ((), 0.0, 0.0)
        # A bpf_stats window netscope opened, and what it measured once closed.
        self._stats_lock = threading.Lock()
        self._stats_timer: threading.Timer | None = None
        self._stats_at: float | None = None  # when in the interval starting a window opens
        self._stats_rates: dict[str, int] = {}  # the effective rates when last measured
        self._stats_window: StatsWindow | None = None
        self._link_totals: dict[tuple[int, int], LinkTotals] = {}
        self._device_netns: set[int] = set()  # namespaces whose devices carried or dropped traffic
        self._netns_list: Every[float, dict[int, NetnsRef]] = Every(
            NETNS_SCAN_S, lambda _: procfs.read_netns(None)
        )
        self._netns_turn = 0
        self._map_memory: Every[tuple[frozenset[str], tuple[int, ...]], int] = Every(
            MAP_MEMORY_EVERY_S, lambda of: own_map_bytes(skip=of[1])
        )

    def prepare(self) -> None:
        """tracefs and kernel headers: what every probe needs, done once. Failures are recorded."""
        with self._prepare_lock:
            if self._prepared:
                return
            self._prepared = True
            # Run counts and times per program (the cost netscope shows for itself): measured in
            # short windows (`_cost`), restored on close. What its own clock reads add to every run
            # is measured once, here.
            self._bpf_stats_before = procfs.read_bpf_stats_enabled()
            if self._bpf_stats_before == 0 and procfs.write_bpf_stats_enabled(1):
                self._clock_ns = bpf_stats_overhead_ns()
                procfs.write_bpf_stats_enabled(0)
            elif self._bpf_stats_before == 1:
                self._clock_ns = bpf_stats_overhead_ns()
            else:
                self._bpf_stats_before = None
            # Raw tracepoints attach without tracefs, so a failed mount is only a note.
            note = ensure_tracefs()
            if note:
                self.notes.append(note)
            try:
                self.headers = find_headers()
            except (HeadersError, BTFError) as e:
                self.setup_error = str(e)
            except (OSError, subprocess.SubprocessError) as e:
                self.setup_error = f"preparing kernel headers for BCC failed: {e}"

    def start_probes(self, probes: Sequence[Probe[Any]], rank: int = 0) -> None:
        """Compile `probes` together and attach them (blocking: run it in a worker)."""
        if self._closed.is_set():
            return
        self.prepare()
        if self.headers is None:
            for probe in probes:
                probe.status = ProbeStatus(probe.name, ProbeState.FAILED, error=self.setup_error)
            return
        for probe in probes:
            probe.set_rate(self.rates.rates.get(probe.name, self.rates.forced or Rate()))
        start_probes(probes, self.headers, rank)
        for probe in probes:
            with self._detail_lock:
                if self._detail_since is None:  # started between measured intervals
                    probe.pause_per_packet()
            self._live_since[probe.name] = time.monotonic()

    @property
    def probes(self) -> tuple[Probe[Any], ...]:
        return tuple(self._probes.values())

    def _make(self, name: str) -> Probe[Any]:
        """A new, unattached probe, compiled with the current flow filter where it applies."""
        cpus, flt = self.info.cpus, self.flow_filter
        if name == "drops":
            return DropsProbe(cpus, self.drop_log_rate, flt)
        if name == "flows":
            return FlowsProbe(cpus, flt, self.max_flows, self.flows_top)
        return PROBE_CLASSES[name](cpus, flt if name in FILTERED else None)

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """The probes the view on screen (or the headless output) needs. Returns a blocking starter
        (to run in a worker) that compiles the needed probes not yet compiled as one program, or
        nothing when none is missing. A probe no longer needed has its hooks detached at once (it
        costs the box nothing) and is let go once unneeded for `linger_s`; needed again before
        that, its hooks attach again without a compile."""
        if not self.bpf:
            return ()
        now = time.monotonic()
        with self._need_lock:
            self._needed = frozenset(names) & set(PROBES)
            for name in PROBES:
                probe = self._probes[name]
                if name in self._needed:
                    if self._unneeded_since.pop(name, None) is not None:
                        with self._detail_lock:  # (a probe not compiled yet attaches once it is)
                            probe.resume(per_packet=self._detail_since is not None)
                        if name in self._attached:
                            self._live_since[name] = time.monotonic()
                elif name not in self._unneeded_since:
                    self._unneeded_since[name] = now
                    probe.suspend()
            fresh = [p for n, p in self._probes.items() if n in self._needed and n not in self._attached]
            self._attached |= {p.name for p in fresh}
        if not fresh:
            return ()
        return (functools.partial(self.start_probes, fresh, min(PROBES.index(p.name) for p in fresh)),)

    def _detach_unneeded(self) -> None:
        """Let go of probes nobody has needed for `linger_s`; a fresh idle probe takes each one's place."""
        now = time.monotonic()
        with self._need_lock:
            for name, since in list(self._unneeded_since.items()):
                if now - since < self.linger_s or name not in self._attached:
                    continue
                self._attached.discard(name)
                old, self._probes[name] = self._probes[name], self._make(name)
                self._live_since.pop(name, None)
                old.close()

    def set_flow_filter(self, flt: Filter | None) -> None:
        """Swap the programs the filter applies to (drops, rings, latency, flows) for ones compiled
        with `flt`. Blocks while compiling: call it from a worker. Each old program keeps counting
        until its replacement is live; one not attached now gets the filter when it attaches."""
        self.flow_filter = flt
        with self._need_lock:
            attached = [name for name in FILTERED if name in self._attached]
            suspended = {name for name in FILTERED if name in self._unneeded_since}
        olds = {name: self._probes[name] for name in FILTERED}
        news = {name: self._make(name) for name in FILTERED}
        for name in suspended:
            news[name].suspend()
        old_flows, new_flows = olds["flows"], news["flows"]
        if isinstance(old_flows, FlowsProbe) and isinstance(new_flows, FlowsProbe):
            new_flows.watch(old_flows.watched)  # the flow screen keeps its stream
        self.start_probes([news[name] for name in attached])
        with self._need_lock:
            for name in FILTERED:
                self._probes[name] = news[name]
                if name in attached:  # (again, if the linger detached it meanwhile)
                    self._attached.add(name)
        for old in olds.values():
            old.close()

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        flows = self._probes["flows"]
        assert isinstance(flows, FlowsProbe)
        flows.watch(flow)

    def statuses(self) -> tuple[ProbeStatus, ...]:
        if not self.bpf:
            return tuple(ProbeStatus(name, ProbeState.OFF) for name in PROBES)
        with self._need_lock:
            return tuple(
                p.status
                if p.name in self._attached and p.name not in self._unneeded_since
                else ProbeStatus(p.name, ProbeState.IDLE)
                for p in self._probes.values()
            )

    def _poll(self, probe: Probe[T], interval_start: float, measured: bool, processed: int) -> T | None:
        """The probe's counts over the interval; `processed` is softnet's count of it, all CPUs."""
        data = probe.poll()
        # A probe that went live during this interval covered only part of it: its counts so far
        # become the baseline and it reports from the next interval on.
        if self._live_since.get(probe.name, 0.0) > interval_start:
            return None
        if data is not None and not measured and probe.per_packet:
            return probe.without_per_packet(data)
        runs = probe.runs
        if data is not None and probe.runs_are_softnet_processed and runs.rate.scale > 1 and runs.weights:
            # A duty cycle's window: its weights count `scale` times; the kernel counted every run.
            factor = processed / runs.weights
            if 1 / (2 * runs.rate.scale) <= factor <= CALIBRATION_UP:
                return probe.calibrate(data, factor)
        return data

    def sample(self) -> Sample:
        self._detach_unneeded()
        index = self._samples_taken  # of the interval this sample starts; 0 after the baseline
        measure_next = index % self.detail_every == 0
        if measure_next:  # before the interval starts, so the hooks cover all of it
            self._set_per_packet(on=True)
        # The kernel's own counters first, at the interval's boundary: the interval is the time
        # between two of their reads (the probes' maps are read right after).
        now = time.monotonic()
        start, self._last = self._last, now
        wall = time.time()
        self._gaps.begin()
        counters = self._counters()
        measured = self.bpf and self._detail_since is not None and self._detail_since <= start
        processed = sum(s.processed for s in counters.softnet)
        polled = {name: self._poll(probe, start, measured, processed) for name, probe in self._probes.items()}
        if not measure_next:
            self._set_per_packet(on=False)
        self._samples_taken += 1
        self._interval_s = now - start
        self._adapt_rates(self._interval_s)
        cost = self._cost(self._interval_s, index)
        self._duty_cycle(self._interval_s, time.monotonic() - now)
        # The probes' counts are taken: from here on nothing may raise and lose them.
        drops, queues, flows = polled["drops"], polled["rings"], polled["flows"]
        seen = self._namespaces_in(drops, queues, flows)
        self._device_netns |= seen
        devices = self._devices()
        self._prune_dead()
        return Sample(
            netns_names=self._netns_names(seen | {d.netns for d in devices}),
            ts=wall,
            interval_s=now - start,
            softirq_names=self._softirq_names,
            irq_lines=self._irq_lines,
            softnet=counters.softnet,
            probes=self.statuses(),
            hardirq=polled["hardirq"],
            softirq=polled["softirq"],
            napi=polled["napi"],
            drops=drops,
            queues=queues,
            devices=devices,
            latency=polled["latency"],
            stack=polled["stack"],
            flows=flows,
            socket_owners=self._socket_owners() if flows else (),
            cost=cost,
            detail_every=self.detail_every,
            detail_measured=measured,
            proc_interrupts=counters.interrupts,
            proc_softirqs=counters.softirqs,
            proc_cpu_times=counters.cpu_times,
            snmp=counters.snmp,
            tunables=self._tunables(drops),
            spans=tuple(sorted(self._gaps.spans.items())),
            read_failed=tuple(sorted(self._gaps.failed)),
        )

    def _counters(self) -> Counters:
        """The kernel's own counts over the interval: softnet, /proc/interrupts and softirqs,
        /proc/stat's interrupt time, the namespace's snmp counters. What cannot be read (a CPU or
        IRQ going away mid-read) is left out of this interval, never made up."""
        prev, now = self._softnet.step()
        softnet = tuple(
            SoftnetCpu(
                cpu,
                cur.processed - before.processed,
                cur.dropped - before.dropped,
                cur.time_squeeze - before.time_squeeze,
            )
            for cpu, cur in sorted(now.items())
            if (before := prev.get(cpu)) is not None
        )
        at = time.monotonic()
        try:
            interrupts, softirqs = self._kernel_counts()
            self._gaps.good(PROC_COUNTS, at)
        except (OSError, ValueError):  # keep the last names: an IRQ or device vanished while read
            interrupts, softirqs = (), ()
            self._gaps.bad(PROC_COUNTS)
        return Counters(softnet, interrupts, softirqs, self._cpu_times(), self._snmp())

    def _cpu_times(self) -> tuple[ProcCpuTime, ...]:
        """Per CPU, time in hardirqs and softirqs over the interval (/proc/stat, in ticks)."""
        prev, now = self._ticks.step()
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        return tuple(
            ProcCpuTime(cpu, round((soft - prev[cpu][1]) * tick_ns), round((hard - prev[cpu][0]) * tick_ns))
            for cpu, (hard, soft) in sorted(now.items())
            if cpu in prev and cpu in self.info.cpus
        )

    def _adapt_rates(self, interval_s: float) -> None:
        """Each sampled probe's rate for the next interval, from its hooks' runs in this one (runs
        while attached for 1/scale of the interval stand for scale times as many)."""
        if interval_s <= 0:
            return
        loads = {
            p.name: Load(p.runs.fires * p.runs.rate.scale / interval_s, p.hooks_per_run)
            for p in self._live_probes()
            if p.sampled
        }
        for name, rate in self.rates.update(loads).items():
            self._probes[name].set_rate(rate)

    def _live_probes(self) -> list[Probe[Any]]:
        """The probes attached for a view now (not suspended)."""
        with self._need_lock:
            return [
                p for n, p in self._probes.items() if n in self._attached and n not in self._unneeded_since
            ]

    def _duty_cycle(self, interval_s: float, elapsed_s: float = 0.0) -> None:
        """At an interval's start: each sampled probe's per-packet hooks are on for 1/scale of the
        interval (their weights count `scale` times), from a random moment of it, so that no phase of
        a periodic load (a reader that drains every 100 ms) is the only one watched. Its hooks that
        count every event stay on; those closing a pairing (copy latency's reads) stay on the
        probe's `drain_s` longer, until the interval's end at most. Not while the per-packet hooks
        are paused between measured intervals (--detail-every). The interval began `elapsed_s` ago
        (reading the maps of 100k flows takes a while): the window must close before the next read,
        or its weights would count time the hooks were not on (the TUI read a third too few flow
        packets)."""
        for timer in self._duty_timers:
            timer.cancel()
        self._duty_timers = []
        stats_at, self._stats_at = self._stats_at, None
        # The probes first: _need_lock is never taken under _detail_lock (need() takes them in the
        # other order; the TUI froze when a key resumed a probe while the sampler was here).
        live = self._live_probes()
        with self._detail_lock:
            if self._detail_since is None:
                return
            cycled = [p for p in live if p.sampled]
            for probe in cycled:
                if probe.rate.scale > 1 and interval_s > 0:
                    probe.pause_sampled()
                else:
                    probe.resume_per_packet()
        for probe in cycled:
            if probe.rate.scale > 1 and interval_s > 0:
                on_s = interval_s / probe.rate.scale
                drain_s = probe.drain_s if probe.closing else 0.0
                # While bpf_stats measures, the window's hooks are on all through it.
                latest = max(0.0, interval_s - on_s - drain_s - elapsed_s)
                at = stats_at if stats_at is not None else random.uniform(0.0, latest)
                self._after(at, functools.partial(self._duty_on, probe))
                self._after(at + on_s, probe.pause_opening)
                if probe.closing:
                    end = max(at + on_s, min(at + on_s + drain_s, interval_s - elapsed_s - DUTY_MARGIN_S))
                    self._after(end, probe.pause_sampled)

    def _after(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._duty_timers.append(daemon_timer(delay_s, fn))

    def _duty_on(self, probe: Probe[Any]) -> None:
        """A duty cycle's window opens, unless the per-packet hooks were paused meanwhile."""
        with self._detail_lock:
            if self._detail_since is not None:
                probe.resume_per_packet()

    def _tunables(self, drops: DropsSample | None) -> tuple[tuple[str, str], ...]:
        """The knobs findings name, now; the drop rules of the nft ruleset while netfilter drops."""
        found = procfs.read_tunables(line.irq for line in self._irq_lines if line.device)
        found += self._rps_masks.get(frozenset(self._netns_refs(self._device_netns).values()))
        if drops is not None:
            netfilter = {r.reason for r in drops.reasons if r.name == NETFILTER_DROP}
            if netfilter:
                where = {b.netns for b in drops.buckets if b.reason in netfilter}
                found += self._nft_rules.get(frozenset(self._netns_refs(where).values()))
        return found

    @staticmethod
    def _read_drop_rules(elsewhere: frozenset[NetnsRef]) -> tuple[tuple[str, str], ...]:
        """nft drop rules of netscope's namespace and of the other namespaces where netfilter drops."""
        found = nft.read_drop_rules()
        for ref in sorted(elsewhere, key=lambda r: r.name):
            found += nft.read_drop_rules(ref.name, ref.path)
        return found

    @staticmethod
    def _read_rps_masks(elsewhere: frozenset[NetnsRef]) -> tuple[tuple[str, str], ...]:
        """RPS masks of netscope's namespace and of the other namespaces whose devices carried or
        dropped traffic (a veth's queues steer in the namespace that holds it)."""
        others = read_sysfs_in({ref.name: ref.path for ref in elsewhere}, procfs.read_rps_masks)
        return procfs.read_rps_masks() + tuple(mask for name in sorted(others) for mask in others[name])

    def _snmp(self) -> tuple[SnmpCount, ...]:
        """This namespace's loss and in counters over the interval (none when /proc/net is unreadable)."""
        prev, now = self._snmp_counts.step()
        return tuple(SnmpCount(g, n, v - prev[(g, n)]) for (g, n), v in now.items() if (g, n) in prev)

    def _kernel_counts(self) -> tuple[tuple[ProcIrqCount, ...], tuple[ProcSoftirqCpu, ...]]:
        """Interrupts per line and softirq runs per vector since the last call, per CPU, from
        /proc/interrupts and /proc/softirqs (the IRQ lines' names are refreshed too)."""
        cpus = self.info.cpus
        columns, lines = procfs.read_interrupt_counts()
        softirq_columns, rows = procfs.read_softirqs()
        self._irq_lines = self._irq_names.get(frozenset(line.irq for line in lines))
        interrupts = {line.irq: _per_cpu(columns, line.per_cpu, cpus) for line in lines}
        per_vector = [_per_cpu(softirq_columns, rows.get(name, ()), cpus) for name in self._softirq_names]
        softirqs = {cpu: tuple(v[i] for v in per_vector) for i, cpu in enumerate(cpus)}
        proc_interrupts = tuple(
            ProcIrqCount(irq, delta)
            for irq, now in sorted(interrupts.items())
            if (prev := self._interrupts_prev.get(irq)) is not None
            and any(delta := tuple(a - b for a, b in zip(now, prev, strict=True)))
        )
        proc_softirqs = tuple(
            ProcSoftirqCpu(cpu, tuple(a - b for a, b in zip(now, prev, strict=True)))
            for cpu, now in softirqs.items()
            if (prev := self._softirqs_prev.get(cpu)) is not None
        )
        self._interrupts_prev, self._softirqs_prev = interrupts, softirqs
        return proc_interrupts, proc_softirqs

    def _set_per_packet(self, on: bool) -> None:
        """Resume or pause every probe's per-packet hooks (a no-op when already so)."""
        with self._detail_lock:
            if on == (self._detail_since is not None):
                return
            for probe in self.probes:
                if on:
                    probe.resume_per_packet()
                else:
                    probe.pause_per_packet()
            self._detail_since = time.monotonic() if on else None

    @staticmethod
    def _namespaces_in(
        drops: DropsSample | None, queues: tuple[QueueCount, ...] | None, flows: FlowsSample | None
    ) -> set[int]:
        """Namespaces the sample's drops, queues and flows happened in."""
        found = {q.netns for q in queues or ()}
        if drops:
            found |= {b.netns for b in drops.buckets} | {e.netns for e in drops.events}
        if flows:
            found |= {f.netns for f in flows.flows}
        return found

    @staticmethod
    def _socket_owners() -> tuple[SocketOwner, ...]:
        try:
            return procfs.read_socket_owners()
        except Exception:  # psutil trouble must not cost the probes' counts
            return ()

    def _netns_refs(self, wanted: set[int]) -> dict[int, NetnsRef]:
        """Names and paths of namespaces; looked up again at most every few seconds while some are
        still unknown (a /proc scan)."""
        wanted = wanted - {0, self.info.netns}
        unknown = wanted - set(self._netns_cache)
        if unknown and time.monotonic() - self._netns_checked > NETNS_RECHECK_S:
            self._netns_checked = time.monotonic()
            self._netns_cache.update(procfs.read_netns(unknown))
        return {n: self._netns_cache[n] for n in wanted if n in self._netns_cache}

    def _netns_names(self, wanted: set[int]) -> tuple[tuple[int, str], ...]:
        return tuple(sorted((n, ref.name) for n, ref in self._netns_refs(wanted).items()))

    def _devices(self) -> tuple[DeviceStats, ...]:
        """Devices of netscope's namespace and of every namespace whose devices carried traffic. The
        devices of every namespace are read (up to DEVICES_NETNS_MAX a turn, those with traffic
        first), so each has its baseline before its first packet; those without traffic are left
        out of the sample."""
        refs = self._netns_list.get(procfs.named_netns_changed())  # `ip netns add`: at once
        self._netns_cache.update(refs)
        others = [n for n in refs if n != self.info.netns]
        others.sort(key=lambda n: (n not in self._device_netns, n))
        if len(others) > DEVICES_NETNS_MAX:  # the busy ones, then the others in turn
            busy = [n for n in others if n in self._device_netns][:DEVICES_NETNS_MAX]
            idle = [n for n in others if n not in self._device_netns]
            start = self._netns_turn % len(idle) if idle else 0
            others = busy + (idle[start:] + idle[:start])[: DEVICES_NETNS_MAX - len(busy)]
            self._netns_turn = start + DEVICES_NETNS_MAX - len(busy)
        namespaces: dict[int, str | None] = {self.info.netns: None}
        namespaces.update({n: refs[n].path for n in others})
        self._links.forget_except(namespaces)
        at = time.monotonic()
        try:
            current = self._links.read(namespaces)
        except Exception as e:  # netlink trouble must not cost the probes' counts
            self.notes.append(f"reading devices over netlink failed: {e}")
            self._gaps.bad(DEVICES)
            return ()
        self._gaps.good(DEVICES, at)
        read: dict[int, set[int]] = {}
        for t in current:  # a namespace read has its loopback at least
            read.setdefault(t.netns, set()).add(t.ifindex)
        # Namespaces gone (their path no longer opens) are forgotten, with their devices; the probes
        # prune their keys too.
        alive = frozenset(read) | frozenset(refs)
        self._alive_devices = (alive, {netns: frozenset(ifindexes) for netns, ifindexes in read.items()})
        devices = link_deltas(self._link_totals, current)
        self._link_totals.update({(t.netns, t.ifindex): t for t in current})
        self._device_netns |= {d.netns for d in devices if d.rx_packets or d.tx_packets or d.rx_dropped}
        self._device_netns &= alive
        self._link_totals = {k: t for k, t in self._link_totals.items() if k[0] in alive}
        return tuple(d for d in devices if d.netns in self._device_netns or d.netns == self.info.netns)

    def _prune_dead(self) -> None:
        """The probes drop the keys of devices, namespaces and IRQ lines gone (and the latency
        probe those of processes gone and sockets no longer followed), whose last counts they just
        read: a week of container churn never fills their tables."""
        if self._alive_devices is None:
            return
        netns, devices = self._alive_devices
        irqs = frozenset(self._interrupts_prev) if PROC_COUNTS not in self._gaps.failed else None
        alive = Alive(netns, devices, irqs)
        for probe in self._live_probes():
            probe.prune(alive)

    def _program_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Cumulative (runs, run time ns) of every program netscope has loaded, by (probe, program)."""
        return {(p.name, prog): counts for p in self.probes for prog, counts in p.program_totals().items()}

    def _cost(self, interval_s: float, index: int) -> OwnCost:
        """netscope's CPU and RSS each interval; its programs' runs and run time from bpf_stats,
        which costs every program run two clock reads (7% of a veth flood here): when netscope
        turns it on itself, it is on for a STATS_WINDOW_S window, STATS_DELAY into one interval in
        every STATS_EVERY or so (a multiple of `detail_every`, so that the per-packet hooks run
        while it measures), and the last window measured is reported until the next.
        `index`: of the interval starting now."""
        cpu_s, rss = procfs.read_own_usage()
        cpu_pct = 100.0 * (cpu_s - self._own_cpu) / interval_s if interval_s > 0 else 0.0
        self._own_cpu = cpu_s
        now, clock = time.monotonic(), self._clock_ns
        if self._bpf_stats_before != 0:  # someone else's setting: every interval is measured as is
            totals = self._program_counts()
            programs = program_deltas(self._program_totals, totals)
            self._program_totals = totals
            on = procfs.read_bpf_stats_enabled() == 1
            if on:
                self._calibrate(
                    programs, interval_s, {p.name: p.runs.rate.n for p in self.probes if p.sampled}
                )
            return OwnCost(cpu_pct, rss, programs, on, interval_s, clock_ns=clock, map_bytes=self._maps())
        with self._stats_lock:
            window, self._stats_window = self._stats_window, None
            measuring = self._stats_timer is not None
        if window is not None:
            self._measured = (window.programs, window.seconds, window.ended)
            self._calibrate(window.programs, window.seconds, window.rates)
        every = self.detail_every * math.ceil(STATS_EVERY / self.detail_every)
        # Measured again, before its time, when a rate changed fourfold since (a flood began).
        rates = {p.name: p.rate.effective for p in self._live_probes() if p.sampled}
        changed = index % self.detail_every == 0 and any(
            not 1 / 4 < n / self._stats_rates.get(name, 1) < 4 for name, n in rates.items()
        )
        if (index % every == 0 or changed) and not measuring and not self._closed.is_set():
            self._stats_rates = rates
            self._open_stats_window()
        measured, measured_s, at = self._measured
        age = now - at if measured_s else 0.0
        return OwnCost(
            cpu_pct, rss, measured, bool(measured_s), measured_s, age, clock_ns=clock, map_bytes=self._maps()
        )

    def _maps(self) -> int:
        """The memory of netscope's BPF maps: the flow tables' at their fullest (they are emptied
        every interval), the others' as they stand, scanned every few seconds."""
        flows = self._probes["flows"]
        assert isinstance(flows, FlowsProbe)
        live = flows.status.state == ProbeState.LIVE
        with self._need_lock:
            attached = frozenset(self._attached)
        skip = flows.table_fds if live else ()
        return self._map_memory.get((attached, skip)) + (flows.table_bytes if live else 0)

    def _open_stats_window(self) -> None:
        """Turn bpf_stats on for STATS_WINDOW_S, away from the interval's start (where netscope
        itself has just read every map, and the first packets after pay for it), and take the
        window's counts, with the rates in force, when it closes. The duty-cycled hooks are on
        for all of the window (see _duty_cycle), which is then no longer than they are: what they
        ran in it counts 1/scale for the interval."""
        interval_s = self._interval_s or 1.0
        on_s = [interval_s / p.rate.scale for p in self._live_probes() if p.sampled and p.rate.scale > 1]
        at = STATS_DELAY * interval_s
        length = min([STATS_WINDOW_S, *(s - 2 * DUTY_MARGIN_S for s in on_s)])
        self._stats_at = at
        start: dict[tuple[str, str], tuple[int, int]] = {}
        opened = 0.0

        def open_window() -> None:
            nonlocal start, opened
            start, opened = self._program_counts(), time.monotonic()
            if self._closed.is_set() or not procfs.write_bpf_stats_enabled(1):
                with self._stats_lock:
                    self._stats_timer = None
                return
            with self._stats_lock:
                self._stats_timer = daemon_timer(length, close_window)

        def close_window() -> None:
            rates = {p.name: p.rate.n for p in self.probes if p.sampled}
            programs = self._per_interval(program_deltas(start, self._program_counts()))
            procfs.write_bpf_stats_enabled(0)
            with self._stats_lock:
                self._stats_timer = None
                self._stats_window = StatsWindow(programs, time.monotonic() - opened, time.monotonic(), rates)

        with self._stats_lock:
            self._stats_timer = daemon_timer(at + DUTY_MARGIN_S, open_window)

    def _per_interval(self, programs: tuple[ProgramCost, ...]) -> tuple[ProgramCost, ...]:
        """A window's runs as the interval's: a duty-cycled hook, on all through the window, ran
        there `scale` times as often as over the interval (a closing hook, on `drain_s` longer,
        less so)."""
        out = []
        interval_s = self._interval_s or 1.0
        for p in programs:
            probe = self._probes[p.probe]
            scale = probe.rate.scale
            if probe.sampled and scale > 1 and p.program in probe.duty_hooks:
                share = 1 / scale + (probe.drain_s / interval_s if p.program in probe.closing else 0.0)
                if share < 1:
                    p = dataclasses.replace(
                        p, runs=round(p.runs * share), run_time_ns=round(p.run_time_ns * share)
                    )
            out.append(p)
        return tuple(out)

    def _calibrate(self, programs: tuple[ProgramCost, ...], seconds: float, rates: dict[str, int]) -> None:
        """A bpf_stats measurement (`seconds` long, at in-kernel `rates`) corrects the sampling
        rates' cost model: each sampled probe's per-packet hooks apart (their run time per run of
        its sampler), the hooks that count every event together (per second)."""
        if seconds <= 0:
            return
        sampled: dict[str, tuple[float, int]] = {}
        fixed = 0.0
        for p in programs:
            net = max(0.0, p.run_time_ns - p.runs * self._clock_ns)
            probe = self._probes[p.probe]
            if probe.sampled and p.program not in probe.every_event:
                ns, runs = sampled.get(p.probe, (0.0, 0))
                sampled[p.probe] = (ns + net, runs + p.runs)
            else:
                fixed += net / seconds
        per_run = {
            name: ns / runs * self._probes[name].hooks_per_run for name, (ns, runs) in sampled.items() if runs
        }
        self.rates.measured(per_run, fixed, rates)

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
                for link in self._links.read({self.info.netns: None})
            ]
        return described

    def close(self) -> None:
        self._closed.set()
        for timer in self._duty_timers:
            timer.cancel()
        with self._stats_lock:
            window, self._stats_timer = self._stats_timer, None
        if window is not None:
            window.cancel()
        if self._bpf_stats_before == 0:  # netscope turned it on: put it back
            procfs.write_bpf_stats_enabled(0)
            self._bpf_stats_before = None
        for probe in self.probes:
            probe.close()
        self._links.close()


def program_deltas(
    before: dict[tuple[str, str], tuple[int, int]], after: dict[tuple[str, str], tuple[int, int]]
) -> tuple[ProgramCost, ...]:
    """Each program's runs and run time between two readings (a program new since counts from its
    first reading; one whose counts went back, a new program under an old name, is left out)."""
    out = []
    for (probe, program), (runs, ns) in after.items():
        runs0, ns0 = before.get((probe, program), (runs, ns))
        if runs >= runs0:
            out.append(ProgramCost(probe, program, runs - runs0, ns - ns0))
    return tuple(out)


def _per_cpu(columns: tuple[int, ...], values: tuple[int, ...], cpus: tuple[int, ...]) -> tuple[int, ...]:
    """A /proc row's counts (in its column order) for the CPUs `cpus`; 0 for a column missing."""
    by_cpu = dict(zip(columns, values, strict=False))
    return tuple(by_cpu.get(cpu, 0) for cpu in cpus)


def irq_lines(lines: list[procfs.InterruptLine]) -> tuple[IrqLine, ...]:
    """/proc/interrupts lines, each mapped to its device and queue."""
    by_bus, by_irq = procfs.read_device_owners()
    interfaces = procfs.read_interfaces()
    out = []
    for line in lines:
        device, queue = map_irq_name(line.irq, line.name, by_bus, by_irq, interfaces)
        out.append(IrqLine(line.irq, line.name, device, queue))
    return tuple(out)


def interfaces_everywhere(own_netns: int) -> dict[str, set[str]]:
    """Device names in every network namespace: name -> the namespaces (names) holding one."""
    refs = procfs.read_netns(None)
    namespaces: dict[int, str | None] = {n: ref.path for n, ref in refs.items() if n != own_netns}
    namespaces[own_netns] = None
    found: dict[str, set[str]] = {}
    for link in LinkReader(own_netns).read(namespaces):
        netns_name = refs[link.netns].name if link.netns in refs and link.netns != own_netns else ""
        found.setdefault(link.ifname, set()).add(netns_name)
    return found
