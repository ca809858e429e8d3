"""The Probe: one BPF program from bpf_src/, with start (compile + attach), poll, close.

Why this shape: the UI and the headless commands treat every probe alike, a probe that fails never
takes the others down, and its failure reason is a sentence a user can act on. BCC is imported here
lazily (in the worker that starts the first probe), never at app import time.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import ipaddress
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from netscope.model.filter import Filter
from netscope.model.sample import ProbeState, ProbeStatus
from netscope.model.sampling import Rate
from netscope.probes import cdefs
from netscope.probes.headers import KernelHeaders
from netscope.probes.tracefs import tracepoint_exists


class CompileLock:
    """One compile at a time, granted to the waiting probe with the lowest priority number, so the
    probes of the pane on screen go first. Once no compile has been asked for `idle_s`, the
    compiler's code pages are handed back (`release_compiler_pages`)."""

    def __init__(self, idle_s: float = 1.0) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiting: list[int] = []
        self.idle_s = idle_s
        self._idle_timer: threading.Timer | None = None

    @contextmanager
    def priority(self, rank: int) -> Iterator[None]:
        with self._cond:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._waiting.append(rank)
            self._cond.wait_for(lambda: not self._busy and min(self._waiting) == rank)
            self._waiting.remove(rank)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if not self._waiting:
                    self._idle_timer = daemon_timer(self.idle_s, release_compiler_pages)


def daemon_timer(delay_s: float, fn: Callable[[], None]) -> threading.Timer:
    """`fn` in `delay_s`, on a thread that does not hold the process up at exit; started."""
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True
    timer.start()
    return timer


# Two BPF() compiles at once in two threads crashed the interpreter 6 of 6 times (BCC 0.26):
# every compile in this process goes through this lock.
COMPILE_LOCK = CompileLock()

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class Runs:
    """A sampled probe's per-packet hooks over one interval: how often they ran (the signal the
    sampling rate adapts to) and how many of those runs were sampled, at `rate`."""

    fires: int = 0
    sampled: int = 0
    rate: Rate = field(default_factory=Rate)
    weights: int = 0  # the samples' weights summed: the runs they stand for
    coverage: float = 1.0  # the share of the interval its sampled hooks were on (a duty cycle's)

    def per_s(self, interval_s: float) -> float:
        """Its hooks' runs per second, as if they had been on all the interval."""
        return self.fires / (self.coverage * interval_s) if self.coverage > 0 and interval_s > 0 else 0.0


@dataclass(frozen=True)
class ProbeOptions:
    """What the command line sets for the probes that take it."""

    drop_log_rate: int  # drops: the drop log's events per second (0: none)
    max_flows: int  # flows: the kernel's flow table
    flows_top: int | None  # flows: the busiest decoded in full per interval (None: all)


class ProbeError(Exception):
    """A probe could not start; the message is for the user."""


def import_bcc() -> Any:
    """`bcc.BPF`, or a ProbeError naming the package to install."""
    try:
        from bcc import BPF
    except ImportError as e:
        raise ProbeError(
            f"BCC is not importable ({e}): install the system package python3-bpfcc "
            "(Debian/Ubuntu: apt install python3-bpfcc) and use a venv made with --system-site-packages"
        ) from None
    return BPF


def bpf_source(filename: str) -> Path:
    """Absolute path of a bpf_src/ file: BCC resolves relative paths against argv[0]'s dir."""
    path = Path(str(resources.files("netscope.bpf_src") / filename))
    if not path.is_file():
        raise ProbeError(f"netscope is installed without its BPF source {filename}")
    return path


class Module:
    """One compiled BPF object, shared by the probes compiled together; freed with the last of them."""

    def __init__(self, bpf: Any, users: int) -> None:
        self.bpf = bpf
        self._users = users
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self.bpf.cleanup()


SCOPE_MAX = cdefs.define("SCOPE_MAX")  # processes and cgroups the scope's map holds
SCOPE_TGID = cdefs.define("SCOPE_TGID")  # a tgid's key in it (a cgroup id's key is itself)


@dataclass(frozen=True)
class KernelScope:
    """The user's process scope as the kernel's hooks test it (bpf_src/netscope.h NS_SCOPE_MAX):
    the processes by tgid and the containers by the cgroup v2 ids of their directories."""

    tgids: frozenset[int] = frozenset()
    cgroups: frozenset[int] = frozenset()


class Probe(ABC, Generic[T]):
    """One probe's BPF source, its hooks and its map decoders. Several probes may be compiled into one
    BPF object (`start_probes`); each attaches and detaches only its own hooks.

    Counters in the kernel are cumulative; `poll` diffs them against the previous read, so no
    increment is lost between a read and a reset. The first poll after start is the baseline.
    """

    name: ClassVar[str]
    source_file: ClassVar[str]
    sample_field: ClassVar[str]  # the field of Sample its interval's counts fill
    filtered: ClassVar[bool] = False  # the user's flow filter is compiled into its program
    tracepoints: ClassVar[tuple[tuple[str, str], ...]]  # (category, name): one hook on each
    # Raw tracepoints that fire once per packet (or more): the hooks a sampled source pauses between
    # measured intervals, in attach order (each probe lists a pairing's closing hook first).
    per_packet: ClassVar[tuple[str, ...]] = ()
    # Its per-packet work is sampled in the kernel (bpf_src/sampler.h): the program has the per-CPU
    # slots `<name>_sampler` (runs and samples) and the rate `<name>_rate`, the N user space sets.
    sampled: ClassVar[bool] = False
    # Hooks of a sampled probe that count every event (each drop): not per packet, never sampled.
    every_event: ClassVar[tuple[str, ...]] = ()
    # Tracepoints a kernel may lack (newer than the rest): left unattached there, the rest runs.
    optional: ClassVar[tuple[str, ...]] = ()
    # Per-packet hooks that close a pairing (copy latency's reads): a duty cycle detaches them
    # `drain_s` after the others, once what was sampled in the window has been paired.
    closing: ClassVar[tuple[str, ...]] = ()
    drain_s = 0.0  # how long its closing hooks outlast a duty cycle's window
    # Program runs per run of its sampler (its other hooks run with it): what its hooks' dispatch costs.
    hooks_per_run: ClassVar[float] = 1.0
    # Its per-CPU count of events a full bounded map had no room for (`<name>_full`), if it has one.
    full_map: ClassVar[str | None] = None
    # A sampled probe whose sampler's hook runs once per packet softnet counts as `processed`
    # (net:netif_receive_skb and that count are both in __netif_receive_skb_core): its estimates
    # are calibrated to the kernel's count of the interval when a duty cycle was in force.
    runs_are_softnet_processed: ClassVar[bool] = False
    # Its hooks in a process's own context keep to the user's process scope: its program has the
    # maps `<name>_scope_on` and `<name>_scope` (bpf_src/netscope.h NS_SCOPE_MAX).
    scoped: ClassVar[bool] = False

    def __init__(self, cpus: tuple[int, ...], flt: Filter | None = None) -> None:
        self.cpus = cpus  # the CPU ids samples report, in this order
        self.filter = flt  # compiled into the program as NS_FILTER(t), for probes that honour it
        self._module: Module | None = None
        self._links: dict[str, int] = {}  # raw tracepoint -> the attachment's fd
        self._previous: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.status = ProbeStatus(self.name, ProbeState.PENDING)
        self.rate = Rate()
        self.runs = Runs()  # its sampled hooks' runs over the last interval polled
        self.coverage = 1.0  # the share of this interval its sampled hooks are on (duty cycle)
        self._runs_total: tuple[int, int, int] | None = None
        self._suspended = False  # compiled, hooks detached: no view needs it now
        self._scope: KernelScope | None = None  # None: every process
        self.absent: frozenset[str] = frozenset()  # its optional tracepoints this kernel lacks
        self.live_at = 0.0  # time.monotonic() when it went live: its baseline taken, hooks attached

    @classmethod
    def create(cls, cpus: tuple[int, ...], flt: Filter | None, options: ProbeOptions) -> Probe[Any]:
        """A new, unattached probe, with the flow filter where it applies and the options it takes."""
        return cls(cpus, flt if cls.filtered else None)

    def defines(self) -> dict[str, int | str]:
        """-D values for the C side (BTF offsets, a compiled filter); none by default."""
        return {}

    @property
    def _bpf(self) -> Any:
        """The BPF object this probe's programs live in; None when not started (or let go)."""
        return self._module.bpf if self._module is not None else None

    def hook_name(self, tp: str) -> str:
        """The C function of this probe's hook on `tp` (NS_HOOK in netscope.h)."""
        return f"{self.name}__{tp}"

    def _prepared_defines(self) -> dict[str, int | str]:
        """The -D values, after checking the kernel has every tracepoint (ProbeError if not)."""
        lacking = {(c, n) for c, n in self.tracepoints if not tracepoint_exists(c, n)}
        self.absent = frozenset(n for _, n in lacking if n in self.optional)
        missing = [f"{c}:{n}" for c, n in self.tracepoints if (c, n) in lacking and n not in self.absent]
        if missing:
            raise ProbeError(
                f"tracepoint {', '.join(missing)} does not exist on this kernel: this probe needs a "
                f"kernel that has it (bpf_src/{self.source_file} names the version that added each); "
                "the other probes still run"
            )
        defines = self.defines()
        if self.filter is not None:
            defines["NS_FILTER(t)"] = self.filter.c_expression("t")
        return defines

    def _adopt(self, module: Module) -> None:
        """Attach this probe's hooks in `module` and take the baseline. Never raises."""
        error = ""
        with self._lock:
            if self._closed.is_set():  # closed while compiling: do not leave it attached
                module.release()
                self.status = ProbeStatus(self.name, ProbeState.STOPPED)
                return
            self._module = module
            try:
                self._write_scope()  # before its hooks run
                self.before_attach(module.bpf)
                for _, tp in self.tracepoints:
                    if not self._suspended:  # (no view needed it any more while it compiled)
                        self._attach(tp)
                self._write_rate()
                self.attached(module.bpf)
                self._previous = self.read_totals(module.bpf)
                self._runs_total = self._read_runs()
            except ProbeError as e:
                error = str(e)
            except Exception as e:  # BCC raises plain Exception for load/attach failures
                error = f"{self.source_file}: {_bcc_message(e)}"
        if error:
            self._fail(error)
        else:
            self.live_at = time.monotonic()
            self.status = ProbeStatus(
                self.name, ProbeState.LIVE, sample_rate=self.rate.effective, window_every=self.rate.every
            )

    def _attach(self, tp: str) -> None:
        from bcc import BPF
        from bcc.libbcc import lib

        if tp in self.absent:
            return
        fn = self._bpf.load_func(self.hook_name(tp).encode(), BPF.RAW_TRACEPOINT)
        fd = lib.bpf_attach_raw_tracepoint(fn.fd, tp.encode())
        if fd < 0:
            raise ProbeError(
                f"attaching to raw tracepoint {tp} failed "
                "(is this process root, with CAP_BPF and CAP_PERFMON?)"
            )
        self._links[tp] = fd

    def _detach(self, tp: str) -> None:
        os.close(self._links.pop(tp))

    def _release(self) -> None:
        """Detach every hook, unload this probe's programs (the kernel frees them; the rest of a
        shared module stays) and let go of the module; with self._lock held."""
        for tp in list(self._links):
            self._detach(tp)
        if self._bpf is not None:
            for _, tp in self.tracepoints:
                fn = self._bpf.funcs.pop(self.hook_name(tp).encode(), None)
                if fn is not None:
                    os.close(fn.fd)
        module, self._module = self._module, None
        if module is not None:
            self.detached()
            module.release()

    def _fail(self, reason: str) -> None:
        with self._lock:
            self._release()
        self.status = ProbeStatus(self.name, ProbeState.FAILED, error=reason)

    def poll(self) -> T | None:
        """Counts since the previous poll, or None when the probe is not live (or not attached)."""
        with self._lock:
            if self._bpf is None or self._previous is None or self._suspended:
                return None
            try:
                # The runs first: right before a table swap (flows), so that the runs of an
                # interval are those its table holds, also while a window is still open.
                runs_total = self._read_runs()
                totals = self.read_totals(self._bpf)
            except Exception as e:
                self._release()
                self.status = ProbeStatus(self.name, ProbeState.FAILED, error=f"reading maps: {e}")
                return None
            previous, self._previous = self._previous, totals
            if runs_total is not None and self._runs_total is not None:
                fires, sampled, weights = (a - b for a, b in zip(runs_total, self._runs_total, strict=True))
                self.runs = Runs(fires, sampled, self.rate, weights, self.coverage)
            self._runs_total = runs_total
            misses = self._recursion_misses()
            not_counted, evicted = self.map_losses(totals)
            if (misses, not_counted, evicted) != (
                self.status.recursion_misses,
                self.status.not_counted,
                self.status.evicted,
            ):
                self.status = dataclasses.replace(
                    self.status, recursion_misses=misses, not_counted=not_counted, evicted=evicted
                )
            return self.delta(previous, totals)

    def map_losses(self, totals: Any) -> tuple[int, int]:
        """(events its bounded maps had no room for, entries they took from a live owner),
        cumulative, from the totals just read or `<name>_full`. Under self._lock."""
        if self.full_map is None or self._bpf is None:
            return 0, 0
        return sum(int(v) for v in self._bpf[self.full_map.encode()][ctypes.c_int(0)]), 0

    def prune(self, alive: Alive) -> None:
        """Delete the keys of what is gone (devices, namespaces, IRQ lines) from its bounded maps,
        so that churn never fills them. Their last counts were read with the previous poll."""
        with self._lock:
            if self._bpf is not None and self._previous is not None:
                self.prune_keys(self._bpf, self._previous, alive)

    def prune_keys(self, bpf: Any, totals: Any, alive: Alive) -> None:
        """The probe's part of `prune`: its maps, with the keys it last read (`totals`)."""

    def _recursion_misses(self) -> int:
        """Runs of this probe's programs the kernel skipped because one of them was already running
        on that CPU (fdinfo `recursion_misses`, counted whether or not bpf_stats is on): events its
        figures miss, like a full ring buffer's. Under self._lock."""
        return sum(int(info.get("recursion_misses", "0")) for _, info in self._hook_fdinfo())

    def _read_runs(self) -> tuple[int, int, int] | None:
        """Cumulative (runs, samples, their weights) of the sampled hooks, all CPUs; None for an
        exact probe."""
        if not self.sampled:
            return None
        fires = sampled = weights = 0
        table = self._bpf[f"{self.name}_sampler".encode()]
        for slot in range(len(table)):
            for v in table[ctypes.c_int(slot)]:
                fires += int(v.fires)
                sampled += int(v.sampled)
                weights += int(v.weights)
        return fires, sampled, weights

    def fires_now(self) -> int | None:
        """Its sampled hooks' runs so far, all CPUs, cumulative; None when not started (or exact)."""
        with self._lock:
            if self._bpf is None:
                return None
            runs = self._read_runs()
        return runs[0] if runs is not None else None

    def set_rate(self, rate: Rate) -> None:
        """Sample at `rate` from now on (a sampled probe; others ignore it)."""
        if not self.sampled or rate == self.rate:
            return
        with self._lock:
            self.rate = rate
            self._write_rate()
        self.status = dataclasses.replace(self.status, sample_rate=rate.effective, window_every=rate.every)

    def set_scope(self, scope: KernelScope | None) -> None:
        """Keep its process-context hooks to `scope` from now on (None: every process), written to
        its maps: nothing is recompiled. Probes that are not `scoped` ignore it."""
        if not self.scoped:
            return
        with self._lock:
            self._scope = scope
            self._write_scope()

    def _write_scope(self) -> None:
        """The scope into `<name>_scope_on` and `<name>_scope` (netscope.h NS_SCOPE_MAX; under
        self._lock). Off while they change, so a process in scope is never left out meanwhile; left
        off when the scope has more processes and cgroups than the map holds (user space narrows
        the views all the same)."""
        if not self.scoped or self._bpf is None:
            return
        bpf, scope = self._bpf, self._scope
        on, keys = bpf[f"{self.name}_scope_on".encode()], bpf[f"{self.name}_scope".encode()]
        on[ctypes.c_int(0)] = ctypes.c_uint32(0)
        keys.clear()
        if scope is None or len(scope.tgids) + len(scope.cgroups) > SCOPE_MAX:
            return
        for key in [SCOPE_TGID | tgid for tgid in scope.tgids] + list(scope.cgroups):
            keys[keys.Key(key)] = keys.Leaf(1)
        on[ctypes.c_int(0)] = ctypes.c_uint32(1)

    def _write_rate(self) -> None:
        if self.sampled and self._bpf is not None:
            table = self._bpf[f"{self.name}_rate".encode()]
            leaf = table.Leaf()
            leaf.n, leaf.scale = self.rate.n, self.rate.window_scale
            table[ctypes.c_int(0)] = leaf

    def program_totals(self) -> dict[str, tuple[int, int]]:
        """Cumulative (runs, run time ns) per hook of this probe, from /proc/self/fdinfo (the
        kernel keeps them while kernel.bpf_stats_enabled is on)."""
        with self._lock:
            return {
                tp: (int(info.get("run_cnt", "0")), int(info.get("run_time_ns", "0")))
                for tp, info in self._hook_fdinfo()
            }

    def _hook_fdinfo(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Each loaded hook of this probe and its program's /proc/self/fdinfo. Under self._lock."""
        if self._bpf is None:
            return
        for _, tp in self.tracepoints:
            fn = self._bpf.funcs.get(self.hook_name(tp).encode())
            if fn is None:
                continue
            try:
                yield tp, fdinfo(fn.fd)
            except OSError:
                continue

    def pause_per_packet(self) -> None:
        """Detach the per-packet hooks (the maps and every other hook stay). Idempotent."""
        self._detach_hooks(self.per_packet)

    def resume_per_packet(self) -> None:
        """Attach the per-packet hooks again (unless the whole probe is suspended)."""
        if not self._suspended:
            self._attach_hooks(self.per_packet)

    @property
    def duty_hooks(self) -> tuple[str, ...]:
        """The per-packet hooks a duty cycle detaches: all but those that count every event."""
        return tuple(tp for tp in self.per_packet if tp not in self.every_event)

    def pause_sampled(self) -> None:
        """Detach the sampled per-packet hooks for the rest of the interval (duty cycle)."""
        self._detach_hooks(self.duty_hooks)

    def pause_opening(self) -> None:
        """A duty cycle's window closes: detach its sampled hooks but those closing a pairing."""
        self._detach_hooks(tp for tp in self.duty_hooks if tp not in self.closing)

    def suspend(self) -> None:
        """Detach every hook and keep the program and its maps: what no view needs costs the box
        nothing, and comes back without a compile (`resume`). Idempotent."""
        self._suspended = True
        self._detach_hooks(tp for _, tp in self.tracepoints)

    def resume(self, per_packet: bool = True) -> None:
        """Attach the hooks again after `suspend` (the per-packet ones only with `per_packet`)."""
        self._suspended = False
        self._attach_hooks(tp for _, tp in self.tracepoints if per_packet or tp not in self.per_packet)

    def _detach_hooks(self, tps: Iterable[str]) -> None:
        with self._lock:
            for tp in reversed(list(tps)):
                if tp in self._links:
                    self._detach(tp)

    def _attach_hooks(self, tps: Iterable[str]) -> None:
        """Attach hooks of a compiled probe, after forgetting what a detached hook left half done.
        Never raises: a hook that will not attach fails the probe."""
        error = ""
        with self._lock:
            if self._bpf is None:
                return
            try:
                missing = [tp for tp in tps if tp not in self._links]
                if missing:
                    self.forget_scratch(self._bpf, missing)
                for tp in missing:
                    self._attach(tp)
            except Exception as e:
                error = f"{self.source_file}: attaching its hooks again: {_bcc_message(e)}"
        if error:
            self._fail(error)

    def forget_scratch(self, bpf: Any, hooks: list[str]) -> None:
        """Clear state one hook leaves for another (a start time), stale after a pause: called
        before `hooks` are attached again (with self._lock held), so no run of theirs meets it."""

    def calibrate(self, data: T, factor: float) -> T:
        """The interval's estimates times `factor`: the kernel's count of the sampled hook's runs
        over the interval, against the runs its samples' weights stand for (`Runs.weights`).
        A window whose edges moved (a timer late while the sampler reads 100k flows) or that saw a
        burst's start but not its end still adds up to what the kernel counted."""
        return data

    def carry(self, window: T, now: T) -> T:
        """An interval between two windows (its sampled hooks off all along): what stands for it,
        from the last window's data and its own (`now`, counted by the hooks that stay on)."""
        return window

    def with_unseen(self, data: T, unseen: int) -> T:
        """The interval's estimates with `unseen` runs the kernel counted that its window saw too
        little of to stand for (a flood that stopped before the window opened), attributed to no
        key where the probe has such a row (the flows' others)."""
        return data

    def without_per_packet(self, data: T) -> T | None:
        """What of an interval's data stands when the per-packet hooks were paused: nothing, unless
        the probe also has hooks that always run."""
        return None

    def close(self) -> None:
        """Detach and let go of the program. Safe to call more than once, from any thread."""
        self._closed.set()
        with self._lock:
            live = self._bpf is not None
            self._release()
            if live and self.status.state == ProbeState.LIVE:
                self.status = ProbeStatus(self.name, ProbeState.STOPPED)

    def before_attach(self, bpf: Any) -> None:
        """Called once the program is loaded, before its hooks are attached (tables to point at)."""

    def attached(self, bpf: Any) -> None:
        """Called once the program is attached, before the first read (e.g. to open a ring buffer)."""

    def detached(self) -> None:
        """Called before the program is let go (with self._lock held): what `attached` opened goes."""

    @abstractmethod
    def read_totals(self, bpf: Any) -> Any:
        """Cumulative counters from the maps, keyed so `delta` can pair them."""

    @abstractmethod
    def delta(self, previous: Any, current: Any) -> T:
        """The sample for the interval between two reads of `read_totals`."""


def start_probes(probes: Sequence[Probe[Any]], headers: KernelHeaders, rank: int = 0) -> None:
    """Compile `probes` as one BPF object (after compiles of a lower `rank`) and attach each: the
    compiler's fixed cost (about 0.2 s here) is paid once, not per probe. Never raises: failures are
    recorded in each probe's status. When the joint compile fails, each probe is compiled alone so
    the error lands on the probe it belongs to."""
    ready: list[tuple[Probe[Any], dict[str, int | str]]] = []
    for probe in probes:
        probe.status = ProbeStatus(probe.name, ProbeState.STARTING, detail=f"compiling {probe.source_file}")
        try:
            ready.append((probe, probe._prepared_defines()))
        except ProbeError as e:
            probe._fail(str(e))
        except Exception as e:
            probe._fail(f"{probe.source_file}: {_bcc_message(e)}")
    if not ready:
        return
    defines = _shared_defines(own for _, own in ready)
    try:
        if defines is None:
            raise ProbeError("the probes' -D values differ")
        module = _compile([p for p, _ in ready], defines, headers, rank)
    except Exception as e:
        if len(ready) > 1:  # apart, each error lands on the probe it belongs to
            for probe, _ in ready:
                start_probes((probe,), headers, rank)
        else:
            message = str(e) if isinstance(e, ProbeError) else f"{ready[0][0].source_file}: {_bcc_message(e)}"
            ready[0][0]._fail(message)
        return
    if module is None:  # every probe was closed while waiting for the compiler
        for probe, _ in ready:
            probe.status = ProbeStatus(probe.name, ProbeState.STOPPED)
        return
    for probe, _ in ready:
        probe._adopt(module)


def _shared_defines(defines: Iterable[dict[str, int | str]]) -> dict[str, int | str] | None:
    """One -D set for probes compiled together; None when two of them need different values."""
    merged: dict[str, int | str] = {}
    for own in defines:
        if any(merged.get(k, v) != v for k, v in own.items()):
            return None
        merged.update(own)
    return merged


def _compile(
    probes: Sequence[Probe[Any]], defines: dict[str, int | str], headers: KernelHeaders, rank: int
) -> Module | None:
    """One BPF object from the probes' sources, each after `#define NS_PROBE <name>`."""
    bpf_cls = import_bcc()
    parts = []
    for probe in probes:
        text = bpf_source(probe.source_file).read_text()
        parts.append(f"#undef NS_PROBE\n#define NS_PROBE {probe.name}\n{text}\n")
    cflags = [f"-I{bpf_source(probes[0].source_file).parent}", "-Wno-unused-value"]
    cflags += [f"-D{k}={v}" for k, v in defines.items()]
    with COMPILE_LOCK.priority(rank):
        if all(p._closed.is_set() for p in probes):  # closed while waiting for the compiler
            return None
        os.environ.update(headers.env)  # BCC reads BCC_KERNEL_SOURCE at compile time
        release_compiler_memory()  # (before too: the compile's peak adds to what the heap holds)
        bpf = bpf_cls(text="".join(parts).encode(), cflags=cflags)
        release_compiler_memory()
    return Module(bpf, len(probes))


@cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_compiler_memory() -> None:
    """Hand the free heap back to the kernel (glibc's malloc_trim): after a compile, about 35 MB
    of RSS LLVM left behind that a netscope that keeps running would otherwise hold for nothing."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


MADV_PAGEOUT = 21  # Linux 5.4+
COMPILER_LIBRARIES = ("libLLVM", "libclang")


def release_compiler_pages() -> None:
    """Page out LLVM's and clang's shared libraries (madvise MADV_PAGEOUT): about 75 MB of RSS that
    only a compile uses. The next compile faults them back in (about 0.03 s a compile here). A
    kernel without MADV_PAGEOUT refuses it and nothing changes."""
    libc = _libc()
    if libc is None:
        return
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return
    for line in maps:
        fields = line.split()
        if len(fields) < 6 or not any(lib in fields[5] for lib in COMPILER_LIBRARIES):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), ctypes.c_int(MADV_PAGEOUT))


def _bcc_message(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    if "raw tracepoint" in text or "attach" in text:
        return f"{text} (is this process root, with CAP_BPF and CAP_PERFMON?)"
    return text


@cache
def _possible_cpu_position() -> dict[int, int]:
    from bcc.utils import get_possible_cpus

    return {cpu: i for i, cpu in enumerate(get_possible_cpus())}


def cpu_positions(cpus: tuple[int, ...]) -> list[int]:
    """Where each of the CPU ids `cpus` is in a per-CPU map value (possible-CPU order)."""
    position = _possible_cpu_position()
    return [position[c] for c in cpus]


def map_max(size: int) -> int:
    """A bounded map's size: `size`, or less under NETSCOPE_MAP_MAX, a test-only cap with which
    tests fill the maps with a little churn."""
    cap = os.environ.get("NETSCOPE_MAP_MAX", "")
    return min(size, int(cap)) if cap.isdigit() and int(cap) > 0 else size


@dataclass(frozen=True)
class Alive:
    """What exists now, for probes to drop the keys of what is gone: the network namespaces, the
    devices of the namespaces read this interval (a namespace not read now keeps its keys), and
    the IRQ lines (None: not read now)."""

    netns: frozenset[int]
    devices: Mapping[int, frozenset[int]]  # netns -> ifindexes
    irqs: frozenset[int] | None = None

    def device_gone(self, netns: int, ifindex: int) -> bool:
        if not netns:
            return False  # not known: kept
        if netns not in self.netns:
            return True
        devices = self.devices.get(netns)
        return devices is not None and ifindex not in devices


def process_gone(tgid: int) -> bool:
    """Whether the process `tgid` has exited (its keys can go)."""
    return not Path(f"/proc/{tgid}").exists()


def drop_keys(
    table: Any, totals: dict[K, Any], gone: Callable[[K], bool], key_of: Callable[[K], Any]
) -> None:
    """Delete from a BPF hash the keys that are `gone` of those just read from it (`totals`), and
    from `totals` too: a key the programs make again counts from zero."""
    for key in [k for k in totals if gone(k)]:
        table.pop(key_of(key), None)
        del totals[key]


# After pointing the programs at the spare tables, this long for runs that looked up the others to
# finish (a program runs for microseconds).
SWAP_GRACE_S = 0.002


class IntervalTables:
    """Tables that hold one interval each, lossless to read and empty: two of each kind,
    `<name>_a` and `<name>_b`, behind a one-slot array of maps `<name>` the programs look the
    current one up in (bpf_src/tables.h). `swap` points the programs at the spare ones, waits for
    runs that looked up the others, and returns the ones they wrote, which nothing writes any more:
    read them whole, then empty them. A new BPF object (compiled for a new filter) has tables of
    its own."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._sides = "ab"  # the side the programs write first
        self._of: Any = None  # the BPF object they belong to

    def prime(self, bpf: Any) -> None:
        """Point the programs of a new BPF object at the first side, before its hooks run: until
        then their lookups find no table and what they count is lost."""
        self._sides, self._of = "ab", bpf
        for name in self.names:
            bpf[name.encode()][ctypes.c_int(0)] = ctypes.c_int(bpf[f"{name}_a".encode()].map_fd)

    def swap(self, bpf: Any) -> str:
        """Swap, and return the side written until now ("a" or "b": `<name>_<side>`)."""
        if self._of is not bpf:
            self._sides, self._of = "ab", bpf
        written, spare = self._sides[0], self._sides[1]
        for name in self.names:
            bpf[name.encode()][ctypes.c_int(0)] = ctypes.c_int(bpf[f"{name}_{spare}".encode()].map_fd)
        self._sides = spare + written
        time.sleep(SWAP_GRACE_S)
        return written

    def fds(self, bpf: Any) -> tuple[int, ...]:
        """Every table's fd, both sides."""
        return tuple(bpf[f"{name}_{side}".encode()].map_fd for name in self.names for side in "ab")


def fdinfo(fd: int) -> dict[str, str]:
    """/proc/self/fdinfo of one of netscope's fds: a BPF program's run counts, a map's memory."""
    lines = Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def map_bytes(fd: int) -> int:
    """What the kernel charges for a BPF map (its `memlock`: for a map allocated as it fills, what
    it holds now); 0 when unknown."""
    try:
        return int(fdinfo(fd).get("memlock", "0"))
    except (OSError, ValueError):
        return 0


def own_map_bytes(skip: Collection[int] = ()) -> int:
    """The memory of every BPF map this process holds (each once, however many fds it has), but
    those of the fds `skip`."""
    charged: dict[str, int] = {}
    for entry in Path("/proc/self/fdinfo").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            info = fdinfo(int(entry.name))
            if "map_id" in info:
                charged[info["map_id"]] = int(info.get("memlock", "0"))
        except (OSError, ValueError):  # (an fd closed meanwhile)
            continue
    return sum(charged.values())


class BatchReader:
    """Every entry of a BPF hash map in BPF_MAP_LOOKUP_BATCH calls (Linux 5.6) of BATCH entries
    each, as raw bytes: one syscall and one ctypes object per key was the sampler's dearest work
    with 100k flows. Its memory follows the entries read, not the map's size. `value_size` is a
    whole entry's value (a per-CPU map's: each CPU's rounded up to 8 bytes, times the possible
    CPUs)."""

    BATCH = 4096

    def __init__(self, key_size: int, value_size: int) -> None:
        self.key_size, self.value_size = key_size, value_size
        self._keys = ctypes.create_string_buffer(key_size * self.BATCH)
        self._values = ctypes.create_string_buffer(value_size * self.BATCH)

    def read(self, fd: int, delete: bool = False) -> tuple[bytes, bytes]:
        """(keys, values) of the map `fd` as it stood, each entry read once; with `delete`, each
        entry is deleted as it is read (BPF_MAP_LOOKUP_AND_DELETE_BATCH)."""
        from bcc.libbcc import lib

        batch = lib.bpf_lookup_and_delete_batch if delete else lib.bpf_lookup_batch
        in_batch, out_batch, count = ctypes.c_uint32(0), ctypes.c_uint32(0), ctypes.c_uint32(0)
        keys, values = bytearray(), bytearray()
        first = True
        while True:
            count.value = self.BATCH
            res = batch(
                fd,
                None if first else ctypes.byref(in_batch),
                ctypes.byref(out_batch),
                self._keys,
                self._values,
                ctypes.byref(count),
            )
            err = -res if res < -1 else ctypes.get_errno()
            keys += memoryview(self._keys)[: self.key_size * count.value]
            values += memoryview(self._values)[: self.value_size * count.value]
            if res != 0:
                if err == errno.ENOENT:  # the end of the map
                    break
                raise OSError(err, f"BPF map batch read: {os.strerror(err)}")
            if count.value == 0:
                break
            in_batch.value, first = out_batch.value, False
        return bytes(keys), bytes(values)


def per_cpu_values(values: Sequence[T], cpus: tuple[int, ...]) -> list[T]:
    """Per-CPU map values (BCC indexes them by possible-CPU order) for the CPU ids `cpus`."""
    return [values[p] for p in cpu_positions(cpus)]


SYS_BPF = 321  # x86-64; bpf(2)
BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 5, 10
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
NOOP_PROGRAM = bytes.fromhex("b7000000000000009500000000000000")  # r0 = 0; exit
CLOCK_RUNS = 2000


def bpf_stats_overhead_ns() -> float:
    """What kernel.bpf_stats_enabled adds to every run it measures (two clock reads: about 50 ns on
    this VM, as much as a small program costs): the run time it reports for a program that does
    nothing, run CLOCK_RUNS times with BPF_PROG_TEST_RUN. 0 when it cannot be measured (bpf_stats
    off, another architecture, not allowed)."""
    if os.uname().machine != "x86_64":
        return 0.0
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(NOOP_PROGRAM)
    license_ = ctypes.create_string_buffer(b"GPL")
    load = (ctypes.c_uint64 * 16)()  # union bpf_attr, zeroed: prog_type, insn_cnt, insns, license
    load[0] = BPF_PROG_TYPE_RAW_TRACEPOINT | (len(NOOP_PROGRAM) // 8) << 32
    load[1] = ctypes.addressof(insns)
    load[2] = ctypes.addressof(license_)
    fd = libc.syscall(SYS_BPF, BPF_PROG_LOAD, ctypes.byref(load), ctypes.sizeof(load))
    if fd < 0:
        return 0.0
    try:
        args = (ctypes.c_uint64 * 4)()
        run = (ctypes.c_uint64 * 10)()  # bpf_attr.test: prog_fd in word 0, ctx_size_in 5, ctx_in 6
        run[0] = fd
        run[5] = ctypes.sizeof(args)
        run[6] = ctypes.addressof(args)
        for _ in range(CLOCK_RUNS):
            if libc.syscall(SYS_BPF, BPF_PROG_TEST_RUN, ctypes.byref(run), ctypes.sizeof(run)) != 0:
                return 0.0
        info = fdinfo(fd)
        runs = int(info.get("run_cnt", "0"))
        return int(info.get("run_time_ns", "0")) / runs if runs else 0.0
    except (OSError, ValueError):
        return 0.0
    finally:
        os.close(fd)


def address_text(raw: Any, version: int) -> str:
    """An IPv4 (first 4 bytes) or IPv6 address read from a map or event field; "" for neither."""
    data = bytes(raw)
    if version == 4:
        return str(ipaddress.IPv4Address(data[:4]))
    if version == 6:
        return ipaddress.IPv6Address(data[:16]).compressed
    return ""
