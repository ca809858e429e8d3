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
from collections.abc import Iterable, Iterator, Sequence
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


class Probe(ABC, Generic[T]):
    """One probe's BPF source, its hooks and its map decoders. Several probes may be compiled into one
    BPF object (`start_probes`); each attaches and detaches only its own hooks.

    Counters in the kernel are cumulative; `poll` diffs them against the previous read, so no
    increment is lost between a read and a reset. The first poll after start is the baseline.
    """

    name: ClassVar[str]
    source_file: ClassVar[str]
    tracepoints: ClassVar[tuple[tuple[str, str], ...]]  # (category, name): one hook on each
    # Raw tracepoints that fire once per packet (or more): the hooks a sampled source pauses between
    # measured intervals, in attach order (each probe lists a pairing's closing hook first).
    per_packet: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cpus: tuple[int, ...], flt: Filter | None = None) -> None:
        self.cpus = cpus  # the CPU ids samples report, in this order
        self.filter = flt  # compiled into the program as NS_FILTER(t), for probes that honour it
        self._module: Module | None = None
        self._links: dict[str, int] = {}  # raw tracepoint -> the attachment's fd
        self._previous: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.status = ProbeStatus(self.name, ProbeState.PENDING)

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
        missing = [f"{c}:{n}" for c, n in self.tracepoints if not tracepoint_exists(c, n)]
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
                for _, tp in self.tracepoints:
                    self._attach(tp)
                self.attached(module.bpf)
                self._previous = self.read_totals(module.bpf)
            except ProbeError as e:
                error = str(e)
            except Exception as e:  # BCC raises plain Exception for load/attach failures
                error = f"{self.source_file}: {_bcc_message(e)}"
        if error:
            self._fail(error)
        else:
            self.status = ProbeStatus(self.name, ProbeState.LIVE)

    def _attach(self, tp: str) -> None:
        from bcc import BPF
        from bcc.libbcc import lib

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
            module.release()

    def _fail(self, reason: str) -> None:
        with self._lock:
            self._release()
        self.status = ProbeStatus(self.name, ProbeState.FAILED, error=reason)

    def poll(self) -> T | None:
        """Counts since the previous poll, or None when the probe is not live."""
        with self._lock:
            if self._bpf is None or self._previous is None:
                return None
            try:
                totals = self.read_totals(self._bpf)
            except Exception as e:
                self._release()
                self.status = ProbeStatus(self.name, ProbeState.FAILED, error=f"reading maps: {e}")
                return None
            previous, self._previous = self._previous, totals
            return self.delta(previous, totals)

    def program_totals(self) -> dict[str, tuple[int, int]]:
        """Cumulative (runs, run time ns) per hook of this probe, from /proc/self/fdinfo (the
        kernel keeps them while kernel.bpf_stats_enabled is on)."""
        with self._lock:
            if self._bpf is None:
                return {}
            out = {}
            for _, tp in self.tracepoints:
                fn = self._bpf.funcs.get(self.hook_name(tp).encode())
                if fn is None:
                    continue
                try:
                    info = dict(
                        line.split(":\t", 1)
                        for line in Path(f"/proc/self/fdinfo/{fn.fd}").read_text().splitlines()
                        if ":\t" in line
                    )
                except OSError:
                    continue
                out[tp] = (int(info.get("run_cnt", "0")), int(info.get("run_time_ns", "0")))
            return out

    def pause_per_packet(self) -> None:
        """Detach the per-packet hooks (the maps and every other hook stay). Idempotent."""
        with self._lock:
            for tp in reversed(self.per_packet):
                if tp in self._links:
                    self._detach(tp)

    def resume_per_packet(self) -> None:
        """Attach the per-packet hooks again, after forgetting what a paused hook left half done.
        Never raises: a hook that will not attach fails the probe."""
        error = ""
        with self._lock:
            if self._bpf is None:
                return
            try:
                if any(tp not in self._links for tp in self.per_packet):
                    self.forget_scratch(self._bpf)
                for tp in self.per_packet:
                    if tp not in self._links:
                        self._attach(tp)
            except Exception as e:
                error = f"{self.source_file}: resuming its per-packet hooks: {_bcc_message(e)}"
        if error:
            self._fail(error)

    def forget_scratch(self, bpf: Any) -> None:
        """Clear state one hook leaves for another (a start time), stale after a pause."""

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

    def attached(self, bpf: Any) -> None:
        """Called once the program is attached, before the first read (e.g. to open a ring buffer)."""

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
