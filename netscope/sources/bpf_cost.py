"""netscope's own cost, as its cost line shows it: its process's CPU and RSS each interval, its BPF
programs' runs and run time (bpf_stats, which costs every run two clock reads: measured in short
windows), its maps' memory. Each measurement also corrects the sampling rates' cost model."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass

from netscope.model.sample import OwnCost, ProbeState, ProgramCost
from netscope.model.sampling import RateController
from netscope.probes.base import bpf_stats_overhead_ns, daemon_timer, own_map_bytes
from netscope.probes.flows import FlowsProbe
from netscope.sources import procfs
from netscope.sources.probe_set import DUTY_MARGIN_S, ProbeSet
from netscope.sources.readings import Every

STATS_EVERY = 10  # bpf_stats (netscope's own cost) is measured one interval in this many,
STATS_WINDOW_S = 0.25  # for this long,
STATS_DELAY = 0.4  # this share of an interval after the interval starts
MAP_MEMORY_EVERY_S = 5.0  # the BPF maps' memory is read again this often (every fd's fdinfo)


@dataclass(frozen=True)
class StatsWindow:
    """What one bpf_stats window measured: each program's runs and run time, over how long, when it
    ended, and the sampled probes' in-kernel rates while it was open."""

    programs: tuple[ProgramCost, ...]
    seconds: float
    ended: float
    rates: dict[str, int]


class BpfCost:
    def __init__(self, probes: ProbeSet, rates: RateController, detail_every: int) -> None:
        self._probes = probes
        self.rates = rates
        self.detail_every = detail_every
        self._closed = threading.Event()
        self._bpf_stats_before: int | None = None  # kernel.bpf_stats_enabled before netscope set it
        self.clock_ns = 0.0  # what bpf_stats' own clock reads add to each run it measures
        self._own_cpu = procfs.read_own_usage()[0]
        self._program_totals: dict[tuple[str, str], tuple[int, int]] = {}
        self._measured: tuple[tuple[ProgramCost, ...], float, float] = ((), 0.0, 0.0)
        # A bpf_stats window netscope opened, and what it measured once closed.
        self._stats_lock = threading.Lock()
        self._stats_timer: threading.Timer | None = None
        self.stats_at: float | None = None  # when in the interval starting a window opens
        self._stats_rates: dict[str, int] = {}  # the effective rates when last measured
        self._stats_window: StatsWindow | None = None
        self._interval_s = 0.0  # of the last interval
        self._map_memory: Every[tuple[frozenset[str], tuple[int, ...]], int] = Every(
            MAP_MEMORY_EVERY_S, lambda of: own_map_bytes(skip=of[1])
        )

    def prepare(self) -> None:
        """Run counts and times per program (the cost netscope shows for itself): measured in short
        windows (`cost`), restored on close. What its own clock reads add to every run is measured
        once, here, before the first compile."""
        self._bpf_stats_before = procfs.read_bpf_stats_enabled()
        if self._bpf_stats_before == 0 and procfs.write_bpf_stats_enabled(1):
            self.clock_ns = bpf_stats_overhead_ns()
            procfs.write_bpf_stats_enabled(0)
        elif self._bpf_stats_before == 1:
            self.clock_ns = bpf_stats_overhead_ns()
        else:
            self._bpf_stats_before = None

    def take_stats_at(self) -> float | None:
        """When in the interval starting a bpf_stats window opens (once), for the duty cycle."""
        at, self.stats_at = self.stats_at, None
        return at

    def _program_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Cumulative (runs, run time ns) of every program netscope has loaded, by (probe, program)."""
        return {
            (p.name, prog): counts for p in self._probes.all for prog, counts in p.program_totals().items()
        }

    def cost(self, interval_s: float, index: int) -> OwnCost:
        """netscope's CPU and RSS each interval; its programs' runs and run time from bpf_stats,
        which costs every program run two clock reads (7% of a veth flood here): when netscope
        turns it on itself, it is on for a STATS_WINDOW_S window, STATS_DELAY into one interval in
        every STATS_EVERY or so (a multiple of `detail_every`, so that the per-packet hooks run
        while it measures), and the last window measured is reported until the next.
        `index`: of the interval starting now."""
        self._interval_s = interval_s
        cpu_s, rss = procfs.read_own_usage()
        cpu_pct = 100.0 * (cpu_s - self._own_cpu) / interval_s if interval_s > 0 else 0.0
        self._own_cpu = cpu_s
        now, clock = time.monotonic(), self.clock_ns
        if self._bpf_stats_before != 0:  # someone else's setting: every interval is measured as is
            totals = self._program_counts()
            programs = program_deltas(self._program_totals, totals)
            self._program_totals = totals
            on = procfs.read_bpf_stats_enabled() == 1
            if on:
                self._calibrate(
                    programs, interval_s, {p.name: p.runs.rate.n for p in self._probes.all if p.sampled}
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
        rates = {p.name: p.rate.effective for p in self._probes.live() if p.sampled}
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
        skip = flows.table_fds if live else ()
        return self._map_memory.get((self._probes.attached(), skip)) + (flows.table_bytes if live else 0)

    def _open_stats_window(self) -> None:
        """Turn bpf_stats on for STATS_WINDOW_S, away from the interval's start (where netscope
        itself has just read every map, and the first packets after pay for it), and take the
        window's counts, with the rates in force, when it closes. The duty-cycled hooks are on
        for all of the window (see ProbeSet.duty_cycle), which is then no longer than they are:
        what they ran in it counts 1/scale for the interval."""
        interval_s = self._interval_s or 1.0
        on_s = [
            interval_s / p.rate.window_scale for p in self._probes.live() if p.sampled and p.rate.scale > 1
        ]
        at = STATS_DELAY * interval_s
        length = min([STATS_WINDOW_S, *(s - 2 * DUTY_MARGIN_S for s in on_s)])
        self.stats_at = at
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
            rates = {p.name: p.rate.n for p in self._probes.all if p.sampled}
            programs = self._per_interval(program_deltas(start, self._program_counts()))
            procfs.write_bpf_stats_enabled(0)
            with self._stats_lock:
                self._stats_timer = None
                self._stats_window = StatsWindow(programs, time.monotonic() - opened, time.monotonic(), rates)

        with self._stats_lock:
            self._stats_timer = daemon_timer(at + DUTY_MARGIN_S, open_window)

    def _per_interval(self, programs: tuple[ProgramCost, ...]) -> tuple[ProgramCost, ...]:
        """A window's runs as the interval's: a duty-cycled hook, on all through the window, ran
        there `scale` times as often as over the interval, or over the `every` intervals of a
        window's period (a closing hook, on `drain_s` longer a window, less so)."""
        out = []
        interval_s = self._interval_s or 1.0
        for p in programs:
            probe = self._probes[p.probe]
            rate = probe.rate
            if probe.sampled and rate.scale > 1 and p.program in probe.duty_hooks:
                drain_s = probe.drain_s / rate.every if p.program in probe.closing else 0.0
                share = 1 / rate.scale + drain_s / interval_s
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
            net = max(0.0, p.run_time_ns - p.runs * self.clock_ns)
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

    def close(self) -> None:
        """Stop measuring, and put bpf_stats back as netscope found it."""
        self._closed.set()
        with self._stats_lock:
            window, self._stats_timer = self._stats_timer, None
        if window is not None:
            window.cancel()
        if self._bpf_stats_before == 0:  # netscope turned it on: put it back
            procfs.write_bpf_stats_enabled(0)
            self._bpf_stats_before = None


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
