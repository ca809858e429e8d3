"""Every BPF probe of a live source through its life: made idle, compiled and attached when a view
needs it, suspended when none does and let go after a linger; compiled again with a new flow
filter; its per-packet hooks paused between measured intervals (--detail-every) and duty-cycled in
a flood; its sampling rate adapted to the budget; its maps read each interval."""

from __future__ import annotations

import functools
import random
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netscope.model.filter import Filter
from netscope.model.sample import ProbeState, ProbeStatus
from netscope.model.sampling import Load, Rate, RateController
from netscope.probes.base import Alive, KernelScope, Probe, ProbeOptions, daemon_timer, start_probes
from netscope.probes.btf import BTFError
from netscope.probes.flows import FlowsProbe
from netscope.probes.headers import HeadersError, KernelHeaders, find_headers
from netscope.probes.registry import BY_NAME, FILTERED, PROBES
from netscope.probes.tracefs import ensure_tracefs

T = TypeVar("T")

# A duty cycle's window counts `scale` times; it is calibrated to the kernel's count of the interval
# (factor: that count over the runs its samples' weights stand for) from 1/scale (the window saw a
# burst that filled only part of the interval) to this (a window that opened late or closed early,
# its timer held up while the sampler read 100k flows). Past it the window saw too little of what
# the kernel counted (a burst wholly outside it) for its mix of flows to stand for the interval's:
# its own weights stand (each moment of the interval is as likely as any other to be watched).
CALIBRATION_UP = 1.5
# An interval between two windows carries the last window's estimates while softnet's count of it is
# within this factor of the window interval's either way.
CARRY_MOVED = 4.0
DUTY_MARGIN_S = 0.005  # a measured window opens this long after the duty-cycled hooks attach
# While a sampled probe's hooks are on all the interval (the last one was quiet), their runs are
# looked at this often: a flood that begins then gets its duty cycle within two looks, not at the
# interval's end (its first interval cost the CPUs pane a fifth of a veth flood's CPU); a burst
# that two looks do not both see is judged at the interval's end, as before.
ONSET_EVERY_S = 0.1
# Each look wakes netscope up, and on this VM a thread's wake-up costs about 1 ms of its CPU time:
# while the watched hooks run at less than 1/ONSET_STIR of a load that needs a duty cycle, the next
# look comes after ONSET_QUIET_S (a flood then is seen within ONSET_QUIET_S + 2 looks). And no
# look at all while no probe is watched (a flood's intervals: every probe duty-cycled).
ONSET_QUIET_S = 0.25
ONSET_STIR = 8.0
ONSET_MIN_LEFT_S = 0.1  # less of the interval left than this: it ends as it began
ONSET_END_MARGIN_S = 0.05  # the window closes this long before the interval's end, at the latest


@dataclass
class OnsetWatch:
    """An interval whose sampled hooks are on all along: when it ends, each watched probe's runs at
    the last look (cumulative, and when), and those whose runs since the look before already
    needed a larger scale (a burst of one look is left to the interval's end to judge)."""

    start: float
    interval_s: float
    fires: dict[str, tuple[int, float]]
    hot: set[str] = field(default_factory=set)


class ProbeSet:
    def __init__(
        self,
        cpus: tuple[int, ...],
        options: ProbeOptions,
        flow_filter: Filter | None,
        rates: RateController,
        linger_s: float,
        before_start: Callable[[], None],
    ) -> None:
        self.cpus = cpus
        self.options = options
        self.flow_filter = flow_filter.flows if flow_filter else None  # its flow terms: what compiles in
        self.rates = rates
        self.linger_s = linger_s
        self._before_start = before_start  # once, before the first compile (bpf_stats' clock)
        self.kernel_scope: KernelScope | None = None  # the user's process scope, in the kernel
        self._detail_since: float | None = 0.0  # when the per-packet hooks went on; None: paused
        self._detail_lock = threading.Lock()  # taken after _need_lock when both are, never before
        # Every probe exists from the start (its status is shown) but is attached only while needed.
        self._probes: dict[str, Probe[Any]] = {name: self._make(name) for name in PROBES}
        self._needed: frozenset[str] = frozenset()
        self._unneeded_since: dict[str, float] = {}
        self._attached: set[str] = set()  # probes whose starter was handed out (one probe per name)
        self._need_lock = threading.Lock()
        self.headers: KernelHeaders | None = None
        self.setup_error = ""
        self.notes: list[str] = []  # non-fatal set-up problems, for the user
        self._closed = threading.Event()
        self._prepare_lock = threading.Lock()
        self._prepared = False
        self._duty_timers: list[threading.Timer] = []
        self._duty_gen = 0  # the interval whose duty cycle the timers are (a late one does nothing)
        # The duty cycle and the onset watch, between the sampler and the watch's thread; taken
        # before _need_lock and _detail_lock, never under them.
        self._duty_lock = threading.Lock()
        self._onset: OnsetWatch | None = None
        self._onset_thread: threading.Thread | None = None
        self._onset_armed = threading.Event()  # set while an OnsetWatch is kept
        self._look_every_s = ONSET_EVERY_S
        # A probe's runs per second when a flood's onset raised its scale: its interval's mean
        # (quiet before the onset) would bring the scale down again at once, and back up in the
        # next interval, with the hooks off from the read until the duty cycle each time.
        self._onset_loads: dict[str, float] = {}
        self._live_since: dict[str, float] = {}
        # Windows one interval in `Rate.every`: the last window's estimates by probe (the probe
        # they came from: one compiled again carries nothing), the intervals to go until the
        # next window, and the probes whose interval under way has none (it carries them).
        self._carried: dict[str, tuple[Probe[Any], Any, int]] = {}  # and softnet's count then
        self._windows_due: dict[str, int] = {}
        self._between: set[str] = set()

    def prepare(self) -> None:
        """tracefs and kernel headers: what every probe needs, done once. Failures are recorded."""
        with self._prepare_lock:
            if self._prepared:
                return
            self._prepared = True
            self._before_start()
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

    @property
    def all(self) -> tuple[Probe[Any], ...]:
        return tuple(self._probes.values())

    def __getitem__(self, name: str) -> Probe[Any]:
        return self._probes[name]

    def attached(self) -> frozenset[str]:
        with self._need_lock:
            return frozenset(self._attached)

    def _make(self, name: str) -> Probe[Any]:
        """A new, unattached probe, compiled with the current flow filter where it applies, keeping
        to the process scope where it does."""
        probe = BY_NAME[name].create(self.cpus, self.flow_filter, self.options)
        probe.set_scope(self.kernel_scope)
        return probe

    def set_scope(self, scope: KernelScope | None) -> None:
        """Push the user's process scope into the probes' maps (None: every process). Nothing is
        recompiled; a probe made later (a filter's swap) gets it too."""
        if scope == self.kernel_scope:
            return
        self.kernel_scope = scope
        for probe in list(self._probes.values()):
            probe.set_scope(scope)

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """The probes the view on screen (or the headless output) needs. Returns a blocking starter
        (to run in a worker) that compiles the needed probes not yet compiled as one program, or
        nothing when none is missing. A probe no longer needed has its hooks detached at once (it
        costs the box nothing) and is let go once unneeded for `linger_s`; needed again before
        that, its hooks attach again without a compile."""
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

    def detach_unneeded(self) -> None:
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
        until its replacement is live; one not attached now gets the filter when it attaches. Its
        flow terms only: one whose flow terms are the programs' already (its scope changed) swaps
        nothing."""
        flt = flt.flows if flt else None
        if flt == self.flow_filter:
            return
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
        with self._need_lock:
            return tuple(
                p.status
                if p.name in self._attached and p.name not in self._unneeded_since
                else ProbeStatus(p.name, ProbeState.IDLE)
                for p in self._probes.values()
            )

    def poll(self, interval_start: float, measured: bool, processed: int) -> dict[str, Any]:
        """Each probe's counts over the interval, by the Sample field it fills (None: not live, or
        live for part of the interval only). `processed`: softnet's count of the interval."""
        return {p.sample_field: self._poll(p, interval_start, measured, processed) for p in self.all}

    def _poll(self, probe: Probe[T], interval_start: float, measured: bool, processed: int) -> T | None:
        data = probe.poll()
        # A probe that went live during this interval covered only part of it: its counts so far
        # become the baseline and it reports from the next interval on. When it went live is its
        # own (a group compiled together goes live probe by probe: its first probes are polled
        # before the last is attached), or when its hooks were attached again.
        since = max(self._live_since.get(probe.name, 0.0), probe.live_at)
        if since > interval_start or data is None:
            self._carried.pop(probe.name, None)
            return None
        if not measured and probe.per_packet:
            self._carried.pop(probe.name, None)
            return probe.without_per_packet(data)
        carried = self._carried.get(probe.name)
        if probe.name in self._between and carried is not None and carried[0] is probe:
            # Its sampled hooks were off all the interval: the last window stands for it (scaled to
            # softnet's count of this one where the window was calibrated to it), with what the
            # hooks that stayed on counted, unless softnet counted a load that moved too far from
            # the window's for its figures to stand (a flood that stopped): then the interval's
            # estimates are not measured (what those hooks counted stands, the rest is unseen),
            # and the next has a window.
            moved = max(1, processed) / max(1, carried[2])
            if 1 / CARRY_MOVED <= moved <= CARRY_MOVED:
                window = carried[1]
                if probe.runs_are_softnet_processed:
                    window = probe.calibrate(window, moved)
                return probe.carry(window, data)
            del self._carried[probe.name]
            self._windows_due[probe.name] = 0
            return probe.with_unseen(data, processed) if probe.every_event else None
        data = self._estimated(probe, data, processed)
        if probe.rate.every > 1:
            self._carried[probe.name] = (probe, data, processed)
        return data

    def _estimated(self, probe: Probe[T], data: T, processed: int) -> T:
        """An interval's data, a duty cycle's window calibrated to the kernel's count where it has one."""
        runs = probe.runs
        if not probe.runs_are_softnet_processed or runs.rate.window_scale <= 1:
            return data
        # A duty cycle's window: its weights count `scale` times; the kernel counted every run.
        if runs.weights and 1 / (2 * runs.rate.window_scale) <= processed / runs.weights <= CALIBRATION_UP:
            return probe.calibrate(data, processed / runs.weights)
        if processed > CALIBRATION_UP * runs.weights:
            # The window saw too little of what the kernel counted for its mix to stand for it (a
            # flood that stopped while the maps were read, before the window opened): its own
            # weights stand, and the rest is counted as unseen, attributed to no flow.
            return probe.with_unseen(data, processed - runs.weights)
        return data

    def measured_since(self, start: float) -> bool:
        """Whether the per-packet hooks were on since `start` (the interval was measured)."""
        return self._detail_since is not None and self._detail_since <= start

    def adapt_rates(self, interval_s: float) -> None:
        """Each sampled probe's rate for the next interval, from its hooks' runs in this one, over
        the time they were on (`Runs.coverage`), or from their rate when a flood's onset raised its
        scale, whichever is more."""
        if interval_s <= 0:
            return
        with self._duty_lock:
            onset, self._onset_loads = self._onset_loads, {}
        # An interval between two windows ran no hook: its rate stays as the last window left it.
        loads = {
            p.name: Load(max(p.runs.per_s(interval_s), onset.get(p.name, 0.0)), p.hooks_per_run)
            for p in self.live()
            if p.sampled and p.name not in self._between
        }
        for name, rate in self.rates.update(loads).items():
            probe = self._probes[name]
            probe.set_rate(rate)

    def live(self) -> list[Probe[Any]]:
        """The probes attached for a view now (not suspended)."""
        with self._need_lock:
            return [
                p for n, p in self._probes.items() if n in self._attached and n not in self._unneeded_since
            ]

    def duty_cycle(self, interval_s: float, elapsed_s: float = 0.0, stats_at: float | None = None) -> None:
        """At an interval's start: each sampled probe's per-packet hooks are on for 1/scale of the
        interval (their weights count `scale` times), from a random moment of it, so that no phase of
        a periodic load (a reader that drains every 100 ms) is the only one watched. Its hooks that
        count every event stay on; those closing a pairing (copy latency's reads) stay on the
        probe's `drain_s` longer, until the interval's end at most. Not while the per-packet hooks
        are paused between measured intervals (--detail-every). The interval began `elapsed_s` ago
        (reading the maps of 100k flows takes a while): the window must close before the next read,
        or its weights would count time the hooks were not on (the TUI read a third too few flow
        packets). While bpf_stats measures (its window `stats_at` into the interval), the window's
        hooks are on all through it. Probes at scale 1 are on all the interval, and watched for a
        flood's onset (`_look_for_onset`)."""
        with self._duty_lock:
            for timer in self._duty_timers:
                timer.cancel()
            self._duty_timers = []
            self._duty_gen += 1
            self._onset = None
            # The probes first: _need_lock is never taken under _detail_lock (need() takes them in
            # the other order; the TUI froze when a key resumed a probe while the sampler was here).
            live = self.live()
            with self._detail_lock:
                if self._detail_since is None:
                    return
                cycled = [p for p in live if p.sampled]
                windowed = [p for p in cycled if p.rate.scale > 1 and interval_s > 0]
                self._between = {p.name for p in windowed if self._between_windows(p, stats_at)}
                for probe in cycled:
                    if probe.name in self._between:
                        probe.coverage = 0.0
                    else:
                        probe.coverage = 1 / probe.rate.window_scale if interval_s > 0 else 1.0
                    if probe in windowed:
                        probe.pause_sampled()
                    else:
                        probe.resume_per_packet()
            left_s = interval_s - elapsed_s
            for probe in windowed:
                if probe.name not in self._between:
                    self._window(probe, interval_s / probe.rate.window_scale, left_s, stats_at)
            whole = [p for p in cycled if p.rate.scale == 1]
            if stats_at is None and interval_s > 0 and whole:
                now = time.monotonic()
                fires = {p.name: p.fires_now() for p in whole}
                watched = {name: (n, now) for name, n in fires.items() if n is not None}
                self._onset = OnsetWatch(now - elapsed_s, interval_s, watched)
                self._onset_armed.set()
                self._watch_onsets()

    def _between_windows(self, probe: Probe[Any], stats_at: float | None) -> bool:
        """Whether the interval starting is one between the probe's windows (`Rate.every`): it
        carries the last window's estimates. A bpf_stats window needs the hooks on: it brings the
        next window forward. Under _duty_lock."""
        every = probe.rate.every
        due = min(self._windows_due.get(probe.name, 0), every - 1)
        carried = self._carried.get(probe.name)
        if due <= 0 or stats_at is not None or carried is None or carried[0] is not probe:
            self._windows_due[probe.name] = every - 1
            return False
        self._windows_due[probe.name] = due - 1
        return True

    def _window(self, probe: Probe[Any], on_s: float, left_s: float, at: float | None = None) -> None:
        """Schedule a duty cycle's window of `on_s` in the `left_s` seconds left of the interval
        (from `at` or as soon after as fits, else from a random moment); a closing hook outlasts it
        by the probe's drain_s. Under _duty_lock."""
        drain_s = probe.drain_s if probe.closing else 0.0
        latest = max(0.0, left_s - on_s - drain_s)
        # Never past the interval's end, a bpf_stats window's moment included (taken after the
        # interval's reads, which took a while): its weights would count in the next interval.
        at = random.uniform(0.0, latest) if at is None else min(at, latest)
        deadline = time.monotonic() + left_s - DUTY_MARGIN_S
        self._after(at, functools.partial(self._window_opens, probe, self._duty_gen, on_s, drain_s, deadline))

    def _window_opens(
        self, probe: Probe[Any], gen: int, on_s: float, drain_s: float, deadline: float
    ) -> None:
        """A window opens; its close is timed from now, not from when it was scheduled: on a busy
        box the opening timer can fire late, and a close timed in advance shortened the window,
        whose weights then counted for time it was not on (an interval of a steady flood read a
        quarter of its packets in CI). Never past the interval's end; nothing once the interval
        it was scheduled in is over."""
        with self._duty_lock:
            if gen != self._duty_gen:
                return
            self._duty_on(probe)
            left_s = max(0.0, deadline - time.monotonic())
            close = min(on_s, left_s)
            self._after(close, probe.pause_opening)
            if probe.closing:
                self._after(max(close, min(close + drain_s, left_s)), probe.pause_sampled)

    def _watch_onsets(self) -> None:
        """Start the thread that looks for a flood's onset (once). Under _duty_lock."""
        if self._onset_thread is None:
            self._onset_thread = threading.Thread(target=self._look_for_onsets, name="onset", daemon=True)
            self._onset_thread.start()

    def _look_for_onsets(self) -> None:
        while self._onset_armed.wait() and not self._closed.wait(self._look_every_s):
            with self._duty_lock:
                if self._onset is not None:
                    self._look_for_onset(self._onset)
                else:
                    self._onset_armed.clear()
                    self._look_every_s = ONSET_EVERY_S

    def _look_for_onset(self, watch: OnsetWatch) -> None:
        """A watched probe whose hooks ran over the last two looks as a flood runs them gets the
        scale that load needs now, and a window of 1/scale of what is left of the interval: what its
        hooks saw so far counts once, the window's `scale` times, and together they estimate the
        whole interval. Under _duty_lock."""
        now = time.monotonic()
        left_s = watch.start + watch.interval_s - now
        if left_s < ONSET_MIN_LEFT_S:
            self._onset = None
            return
        live = [p for p in self.live() if p.sampled]
        loads = {p.name: Load(p.runs.per_s(watch.interval_s), p.hooks_per_run) for p in live}
        for name, (before, then) in list(watch.fires.items()):
            fires = self._probes[name].fires_now()
            if fires is None or name not in loads or now <= then:
                del watch.fires[name]
                continue
            watch.fires[name] = (fires, now)
            loads[name] = Load((fires - before) / (now - then), self._probes[name].hooks_per_run)
        wanted = self.rates.onset(loads, watch.fires)
        stirring = wanted or self.rates.onset(
            {name: Load(load.runs_per_s * ONSET_STIR, load.hooks_per_run) for name, load in loads.items()},
            watch.fires,
        )
        self._look_every_s = ONSET_EVERY_S if stirring else ONSET_QUIET_S
        sustained = {name: rate for name, rate in wanted.items() if name in watch.hot}
        watch.hot = set(wanted)
        for name, rate in sustained.items():
            probe = self._probes[name]
            # The arrivals sampled so far are paired before the window may open (its reads go off).
            drain_s = probe.drain_s if probe.closing else 0.0
            earliest = DUTY_MARGIN_S + drain_s
            on_s = left_s / rate.scale
            latest = left_s - on_s - ONSET_END_MARGIN_S - drain_s
            if latest < earliest:  # too late to pair them and still watch a window
                del watch.fires[name]
                continue
            with self._detail_lock:
                if self._detail_since is None:
                    return
                probe.pause_opening()
            self.rates.raised(name, rate)
            self._onset_loads[name] = loads[name].runs_per_s
            probe.set_rate(rate)
            del watch.fires[name]
            if probe.closing:
                self._after(drain_s, probe.pause_sampled)
            self._window(probe, on_s, left_s, random.uniform(earliest, latest))
            probe.coverage = (now - watch.start + on_s) / watch.interval_s

    def _after(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._duty_timers.append(daemon_timer(delay_s, fn))

    def _duty_on(self, probe: Probe[Any]) -> None:
        """A duty cycle's window opens, unless the per-packet hooks were paused meanwhile."""
        with self._detail_lock:
            if self._detail_since is not None:
                probe.resume_per_packet()

    def set_per_packet(self, on: bool) -> None:
        """Resume or pause every probe's per-packet hooks (a no-op when already so)."""
        with self._detail_lock:
            if on == (self._detail_since is not None):
                return
            for probe in self.all:
                if on:
                    probe.resume_per_packet()
                else:
                    probe.pause_per_packet()
            self._detail_since = time.monotonic() if on else None

    def prune(self, alive: Alive) -> None:
        """The probes drop the keys of devices, namespaces and IRQ lines gone (and the latency
        probe those of processes gone and sockets no longer followed), whose last counts they just
        read: a week of container churn never fills their tables."""
        for probe in self.live():
            probe.prune(alive)

    def close(self) -> None:
        self._closed.set()
        self._onset_armed.set()  # the onset thread sees it closed
        with self._duty_lock:
            self._onset = None
            for timer in self._duty_timers:
                timer.cancel()
        for probe in self.all:
            probe.close()
