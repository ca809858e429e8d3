"""The Probe: one BPF program from bpf_src/, with start (compile + attach), poll, close.

Why this shape: the UI and the headless commands treat every probe alike, a probe that fails never
takes the others down, and its failure reason is a sentence a user can act on. BCC is imported here
lazily (in the worker that starts the first probe), never at app import time.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from netscope.model.filter import Filter
from netscope.model.sample import ProbeState, ProbeStatus
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
                    self._idle_timer = threading.Timer(self.idle_s, release_compiler_pages)
                    self._idle_timer.daemon = True
                    self._idle_timer.start()


# Two BPF() compiles at once in two threads crashed the interpreter 6 of 6 times (BCC 0.26):
# every compile in this process goes through this lock.
COMPILE_LOCK = CompileLock()

T = TypeVar("T")


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


class Probe(ABC, Generic[T]):
    """Owns one BPF program. Subclasses name the source file and tracepoints and decode the maps.

    Counters in the kernel are cumulative; `poll` diffs them against the previous read, so no
    increment is lost between a read and a reset. The first poll after start is the baseline.
    """

    name: ClassVar[str]
    source_file: ClassVar[str]
    tracepoints: ClassVar[tuple[tuple[str, str], ...]]  # (category, name)
    # Raw tracepoints that fire once per packet (or more): the hooks a sampled source pauses between
    # measured intervals, in attach order (each probe lists a pairing's closing hook first).
    per_packet: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cpus: tuple[int, ...], flt: Filter | None = None) -> None:
        self.cpus = cpus  # the CPU ids samples report, in this order
        self.filter = flt  # compiled into the program as NS_FILTER(t), for probes that honour it
        self._bpf: Any = None
        self._previous: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.status = ProbeStatus(self.name, ProbeState.PENDING)

    def defines(self) -> dict[str, int | str]:
        """-D values for the C side (BTF offsets, a compiled filter); none by default."""
        return {}

    def start(self, headers: KernelHeaders, rank: int = 0) -> None:
        """Compile and attach (after probes of a lower `rank`). Never raises: failure is recorded in
        `status`."""
        self.status = ProbeStatus(self.name, ProbeState.STARTING, detail=f"compiling {self.source_file}")
        try:
            missing = [f"{c}:{n}" for c, n in self.tracepoints if not tracepoint_exists(c, n)]
            if missing:
                raise ProbeError(f"tracepoint {', '.join(missing)} does not exist on this kernel")
            bpf_cls = import_bcc()
            src = bpf_source(self.source_file)
            cflags = [f"-I{src.parent}", "-Wno-unused-value"]
            defines = self.defines()
            if self.filter is not None:
                defines["NS_FILTER(t)"] = self.filter.c_expression("t")
            cflags += [f"-D{k}={v}" for k, v in defines.items()]
            with COMPILE_LOCK.priority(rank):
                if self._closed.is_set():  # closed while waiting for the compiler
                    self.status = ProbeStatus(self.name, ProbeState.STOPPED)
                    return
                os.environ.update(headers.env)  # BCC reads BCC_KERNEL_SOURCE at compile time
                bpf = bpf_cls(src_file=str(src).encode(), cflags=cflags)
                release_compiler_memory()
            with self._lock:
                if self._closed.is_set():  # closed while compiling: do not leave it attached
                    bpf.cleanup()
                    self.status = ProbeStatus(self.name, ProbeState.STOPPED)
                    return
                self._bpf = bpf
                self.attached(bpf)
                self._previous = self.read_totals(bpf)
        except ProbeError as e:
            self._fail(str(e))
        except Exception as e:  # BCC raises plain Exception for compile/attach failures
            self._fail(f"{self.source_file}: {_bcc_message(e)}")
        else:
            self.status = ProbeStatus(self.name, ProbeState.LIVE)

    def _fail(self, reason: str) -> None:
        with self._lock:
            bpf, self._bpf = self._bpf, None
        if bpf is not None:
            bpf.cleanup()
        self.status = ProbeStatus(self.name, ProbeState.FAILED, error=reason)

    def poll(self) -> T | None:
        """Counts since the previous poll, or None when the probe is not live."""
        with self._lock:
            if self._bpf is None or self._previous is None:
                return None
            try:
                totals = self.read_totals(self._bpf)
            except Exception as e:
                self._bpf = None
                self.status = ProbeStatus(self.name, ProbeState.FAILED, error=f"reading maps: {e}")
                return None
            previous, self._previous = self._previous, totals
            return self.delta(previous, totals)

    def program_totals(self) -> dict[str, tuple[int, int]]:
        """Cumulative (runs, run time ns) per program of this probe, from /proc/self/fdinfo (the
        kernel keeps them while kernel.bpf_stats_enabled is on)."""
        with self._lock:
            bpf = self._bpf
            if bpf is None:
                return {}
            out = {}
            for name, fn in bpf.funcs.items():
                try:
                    info = dict(
                        line.split(":\t", 1)
                        for line in Path(f"/proc/self/fdinfo/{fn.fd}").read_text().splitlines()
                        if ":\t" in line
                    )
                except OSError:
                    continue
                label = name.decode() if isinstance(name, bytes) else str(name)
                out[label.removeprefix("raw_tracepoint__")] = (
                    int(info.get("run_cnt", "0")),
                    int(info.get("run_time_ns", "0")),
                )
            return out

    def pause_per_packet(self) -> None:
        """Detach the per-packet hooks (the maps and every other hook stay). Idempotent."""
        with self._lock:
            bpf = self._bpf
            if bpf is None:
                return
            for tp in reversed(self.per_packet):
                if tp.encode() in bpf.raw_tracepoint_fds:
                    bpf.detach_raw_tracepoint(tp=tp.encode())

    def resume_per_packet(self) -> None:
        """Attach the per-packet hooks again, after forgetting what a paused hook left half done."""
        with self._lock:
            bpf = self._bpf
            if bpf is None:
                return
            if any(tp.encode() not in bpf.raw_tracepoint_fds for tp in self.per_packet):
                self.forget_scratch(bpf)
            for tp in self.per_packet:
                if tp.encode() not in bpf.raw_tracepoint_fds:
                    bpf.attach_raw_tracepoint(tp=tp.encode(), fn_name=f"raw_tracepoint__{tp}".encode())

    def forget_scratch(self, bpf: Any) -> None:
        """Clear state one hook leaves for another (a start time), stale after a pause."""

    def without_per_packet(self, data: T) -> T | None:
        """What of an interval's data stands when the per-packet hooks were paused: nothing, unless
        the probe also has hooks that always run."""
        return None

    def close(self) -> None:
        """Detach and free the program. Safe to call more than once, from any thread."""
        self._closed.set()
        with self._lock:
            bpf, self._bpf = self._bpf, None
            if bpf is not None:
                bpf.cleanup()
                if self.status.state == ProbeState.LIVE:
                    self.status = ProbeStatus(self.name, ProbeState.STOPPED)

    def attached(self, bpf: Any) -> None:
        """Called once the program is attached, before the first read (e.g. to open a ring buffer)."""

    @abstractmethod
    def read_totals(self, bpf: Any) -> Any:
        """Cumulative counters from the maps, keyed so `delta` can pair them."""

    @abstractmethod
    def delta(self, previous: Any, current: Any) -> T:
        """The sample for the interval between two reads of `read_totals`."""


@cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_compiler_memory() -> None:
    """Hand the heap LLVM left behind after a compile back to the kernel (glibc's malloc_trim):
    about 35 MB of RSS a netscope that keeps running would otherwise hold for nothing."""
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


def per_cpu_values(values: Sequence[T], cpus: tuple[int, ...]) -> list[T]:
    """Per-CPU map values (BCC indexes them by possible-CPU order) for the CPU ids `cpus`."""
    position = _possible_cpu_position()
    return [values[position[c]] for c in cpus]


def address_text(raw: Any, version: int) -> str:
    """An IPv4 (first 4 bytes) or IPv6 address read from a map or event field; "" for neither."""
    data = bytes(raw)
    if version == 4:
        return str(ipaddress.IPv4Address(data[:4]))
    if version == 6:
        return ipaddress.IPv6Address(data[:16]).compressed
    return ""
