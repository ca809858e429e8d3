"""Command line: tui (default) | snapshot | record | replay.

Every failure a user can cause or meet ends with one clear sentence on stderr and a documented exit
code (README "Exit codes"), never a traceback (set NETSCOPE_DEBUG=1 to get one).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from netscope import __version__
from netscope.model.flows import FLOWS_MAX, FLOWS_TOP, MAX_FLOWS
from netscope.model.sample import LOOKBACK, HostInfo, ProbeState, Sample
from netscope.panes import PANES

if TYPE_CHECKING:  # the heavy modules load only in the command that needs them
    from netscope.model.filter import Filter
    from netscope.model.timeline import ViewModel
    from netscope.sources import Source
    from netscope.sources.live import LiveSource
    from netscope.sources.recording import Recording

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # bad arguments, bad input file, not root
EXIT_KERNEL = 3  # the kernel or system lacks what live data needs (BCC, headers, BTF, tracepoints)
FLOWS_TOP_JSON = 100  # flows in full in a JSON line by default (--top)
EXIT_SIGNAL_BASE = 128  # killed by a signal: 128 + its number (Ctrl-C: 130)
M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES = -3, 128 * 1024  # mallopt(3): glibc's default, kept fixed
MAX_RATE = 1 << 16  # netscope.model.sampling.MAX_RATE (not imported: the CLI loads light)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread: a BaseException, as KeyboardInterrupt is, so
    no `except Exception` on the way (a probe's attach, a /proc read) takes it for a failure of its
    own and carries on (`export` once lost every probe that way and kept serving)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 3600 seconds, got {text}")
    return value


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return int(text)


def _every(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 (every interval) or more")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (no end) or more")
    return value


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90, 90s, 15m, 2h)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    number, unit = (text[:-1], text[-1].lower()) if text and text[-1].lower() in units else (text, "")
    try:
        value = int(float(number) * units.get(unit, 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500k, 100M, 2G)") from None
    if value < 4096:
        raise argparse.ArgumentTypeError("must be at least 4k")
    return value


def _rate(text: str) -> int:
    value = _count(text)
    if not 1 <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"must be between 1 (every packet) and {MAX_RATE}")
    return value


def _table_size(text: str) -> int:
    value = _count(text)
    if not 1024 <= value <= MAX_FLOWS:
        raise argparse.ArgumentTypeError(f"must be between 1024 and {MAX_FLOWS:,} flows")
    return value


def _log_rate(text: str) -> int:
    value = _count(text)
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000000 events per second")
    return value


# What each headless section reads: only these probes are attached. A pane's section reads what
# the pane shows (netscope/panes.py); "drop-log" is the drops probe with its per-event log, "tcp"
# the tcp probe alone (export's TCP counters, without the flow table's hooks).
SECTIONS = {
    **{p.id: p.probes for p in PANES if p.section},
    "drop-log": ("drops",),
    "tcp": ("tcp",),
}


# What export attaches unless told: every metric it serves but the per-CPU NAPI and softirq timing
# (`cpus`), the per-queue split of queues with no counters (`rings`) and the wait in the qdiscs
# (`tx`): the drop reasons (once per drop), copy and stack latency (hooks sampled under the cost
# budget) and the TCP connections' events. The rest are the kernel's own counters, read every
# interval, free per packet (README, "Overhead").
DEFAULT_SECTIONS = ("drops", "latency", "tcp")
# `snapshot` runs the per-packet hooks one interval in this many (the first after the baseline, so a
# one-shot snapshot has them all): a monitor left streaming costs the box little (README,
# "Overhead"). `record` keeps every interval whole for drilling later.
DETAIL_EVERY = 20


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or '(none given)'}; choose from {', '.join(SECTIONS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netscope",
        description="What the Linux kernel does with packets, live: hardirqs, softirqs, NAPI, per CPU.",
    )
    parser.add_argument("--version", action="version", version=f"netscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def device_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--interface",
            action="append",
            default=[],
            metavar="NAME",
            help="show only this device in the Rings pane and the queues/devices output (repeatable; "
            "any namespace)",
        )
        p.add_argument(
            "--netns", metavar="NAME", help="only devices in this namespace (ip netns name or inode)"
        )

    def scope_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--pid",
            action="append",
            default=[],
            type=_pid,
            metavar="PID",
            help="narrow the views of processes (latency, drops at sockets, flows, processes) to this "
            "process (repeatable)",
        )
        p.add_argument(
            "--container",
            action="append",
            default=[],
            metavar="ID",
            help="the same for a container: its name, its id or a prefix, runtime:id, or its pod's name "
            "or uid (repeatable)",
        )

    def interval_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--interval", "-i", type=_positive, default=1.0, help="seconds per sample (default 1)")
        p.add_argument(
            "--filter",
            metavar="EXPR",
            help="pcap-like filter for the flows (host, net, port, src, dst, tcp, udp, icmp, ip6, "
            "and/or/not), compiled into the kernel program; `pid N` and `container ID` terms "
            "narrow to processes as --pid and --container do",
        )
        scope_args(p)
        p.add_argument(
            "--drop-log-rate",
            type=_log_rate,
            default=1000,
            metavar="N",
            help="drop log events per second, all CPUs together (default 1000; counts stay exact)",
        )

    def sections_arg(p: argparse.ArgumentParser, default: tuple[str, ...] = tuple(SECTIONS)) -> None:
        p.add_argument(
            "--sections",
            type=_sections,
            default=default,
            metavar="LIST",
            help=f"what to collect, comma-separated, of {','.join(SECTIONS)} (default {','.join(default)}); "
            "only the probes these read are attached",
        )

    def detail_arg(p: argparse.ArgumentParser, default: int) -> None:
        p.add_argument(
            "--detail-every",
            type=_every,
            default=default,
            metavar="N",
            help="run the per-packet hooks (softirq timing, NAPI, queues, flows) one interval in N; "
            f"their figures are null in the others (default {default}; 1 = every interval)",
        )

    def sample_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--sample",
            type=_rate,
            metavar="N",
            help="sample 1 in N of the per-packet work (flows, queues, NAPI, softirq and copy timing) "
            "instead of the rate netscope adapts to its budget; counts from the kernel's own "
            "counters stay exact",
        )

    def max_flows_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--max-flows",
            type=_table_size,
            default=FLOWS_MAX,
            metavar="N",
            help=f"flows the kernel's flow table holds per interval (default {FLOWS_MAX:,}); the "
            "packets of flows past it are still counted, in the others row",
        )

    def top_arg(p: argparse.ArgumentParser, default: int | None) -> None:
        """--top N; `default` None: as `_top` decides for the command (record, replay)."""
        p.add_argument(
            "--top",
            type=_count,
            default=default,
            metavar="N",
            help="the busiest N flows kept in full (the flow lists, the JSON's flows), the rest "
            f"summed in others (default: {FLOWS_TOP} in the TUI and a recording, {FLOWS_TOP_JSON} "
            "in JSON lines; 0 = every flow)",
        )

    def no_bpf_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-bpf",
            action="store_true",
            help="no BPF and no root: interrupts, softirq runs, softnet and devices from /proc and "
            "netlink; the panes say what needs BPF",
        )

    def look_back_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--look-back",
            type=_count,
            default=LOOKBACK,
            metavar="N",
            help=f"intervals kept to look back at with , and . (default {LOOKBACK}: 10 minutes at 1 s; "
            "each holds its counters, its busiest flows and its newest logged drops)",
        )

    tui = sub.add_parser("tui", help="the live terminal UI (the default)")
    interval_arg(tui)
    sample_arg(tui)
    max_flows_arg(tui)
    top_arg(tui, FLOWS_TOP)
    look_back_arg(tui)
    no_bpf_arg(tui)
    device_args(tui)
    snap = sub.add_parser("snapshot", help="print per-interval counts (text, or JSON lines with --json)")
    interval_arg(snap)
    device_args(snap)
    snap.add_argument("--count", "-n", type=_count, default=1, help="intervals to print; 0 = until stopped")
    snap.add_argument("--json", action="store_true", help="one JSON object per interval (schema: README)")
    sections_arg(snap)
    detail_arg(snap, DETAIL_EVERY)
    sample_arg(snap)
    max_flows_arg(snap)
    top_arg(snap, FLOWS_TOP_JSON)
    no_bpf_arg(snap)
    rec = sub.add_parser("record", help="record raw samples to a file that `replay` plays back")
    interval_arg(rec)
    rec.add_argument("--output", "-o", type=Path, required=True, help="the recording file to write")
    length = rec.add_mutually_exclusive_group()
    length.add_argument(
        "--count", "-n", type=_count, default=0, help="intervals to record; 0 = until stopped"
    )
    length.add_argument("--duration", "-d", type=_duration, help="how long to record: 90, 90s, 15m, 2h")
    rec.add_argument(
        "--max-size",
        type=_size,
        metavar="SIZE",
        help="stop before the file passes SIZE (bytes, or 500k, 100M, 2G); the file stays whole",
    )
    rec.add_argument(
        "--json", action="store_true", help="also print each interval's snapshot JSON line while recording"
    )
    sections_arg(rec)
    detail_arg(rec, 1)
    sample_arg(rec)
    max_flows_arg(rec)
    top_arg(rec, None)
    no_bpf_arg(rec)
    exp = sub.add_parser("export", help="serve Prometheus metrics (counters since netscope started)")
    interval_arg(exp)
    exp.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 9469),
        metavar="HOST:PORT",
        help="where to serve /metrics (default 127.0.0.1:9469)",
    )
    sections_arg(exp, default=DEFAULT_SECTIONS)
    sample_arg(exp)
    max_flows_arg(exp)
    rep = sub.add_parser("replay", help="open a recording in the TUI (no root needed)")
    rep.add_argument("file", type=Path)
    device_args(rep)
    rep.add_argument("--filter", metavar="EXPR", help="show only the recorded flows that match (pcap-like)")
    scope_args(rep)
    rep.add_argument("--json", action="store_true", help="print the snapshot JSON lines instead of the TUI")
    top_arg(rep, None)
    return parser


def _require_live(args: argparse.Namespace) -> None:
    if getattr(args, "no_bpf", False):  # /proc, sysfs and netlink only: no root, no BCC
        return
    if os.geteuid() != 0:
        raise CliError(
            "live data needs root (BPF needs CAP_BPF and CAP_PERFMON): run it with sudo, "
            "run `netscope --no-bpf` for what /proc, sysfs and netlink show without it, "
            "or open a recording with `netscope replay FILE`",
            EXIT_USAGE,
        )
    if importlib.util.find_spec("bcc") is None:
        raise CliError(
            "BCC is not installed for this Python: install the system package python3-bpfcc "
            "(apt install python3-bpfcc) and run netscope from a venv made with --system-site-packages "
            "(`make setup` does both)",
            EXIT_KERNEL,
        )


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP (ssh dropped) unwind like Ctrl-C, so `finally` detaches every probe."""

    def handler(signum: int, _frame: FrameType | None) -> NoReturn:
        raise Terminated(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _check_interfaces(args: argparse.Namespace, known: dict[str, set[str]]) -> None:
    """Exit 2 on a device name that exists nowhere (or not in the --netns named)."""
    for name in args.interface:
        where = known.get(name)
        by_name = args.netns is not None and not args.netns.isdigit()
        if where is None or (by_name and args.netns not in where):
            scope = f" in namespace {args.netns}" if by_name and where is not None else ""
            choices = ", ".join(sorted(known)) or "none"
            raise CliError(f"no such interface: {name}{scope} (known: {choices})", EXIT_USAGE)


def _check_live_interfaces(args: argparse.Namespace) -> None:
    if not args.interface:
        return
    from netscope.sources.live import interfaces_everywhere
    from netscope.sources.procfs import read_host_info

    _check_interfaces(args, interfaces_everywhere(read_host_info().netns))


def _flow_filter(args: argparse.Namespace) -> Filter | None:
    """The --filter expression with --pid and --container, or exit 2 pointing at its bad token."""
    from netscope.model.filter import FilterError, Scope, parse_filter, with_scope

    scope = Scope(frozenset(getattr(args, "pid", ())), tuple(getattr(args, "container", ())))
    if not getattr(args, "filter", None):
        return with_scope(None, scope)
    try:
        return with_scope(parse_filter(args.filter), scope)
    except FilterError as e:
        raise CliError(f"bad --filter:\n{e.pointer()}", EXIT_USAGE) from None


def _top(args: argparse.Namespace) -> int | None:
    """The busiest flows kept in full (None: all): --top, else the TUI's FLOWS_TOP (a recording
    keeps what the TUI lists when replayed), or FLOWS_TOP_JSON for a replay's JSON lines."""
    top = getattr(args, "top", None)
    if top is None:
        top = FLOWS_TOP_JSON if args.command == "replay" and args.json else FLOWS_TOP
    return top or None


def _live_source(args: argparse.Namespace) -> LiveSource:
    from netscope.sources.live import LiveSource

    # The TUI always logs drops; headless commands only when the drop-log section is asked for.
    logging = "drop-log" in getattr(args, "sections", ("drop-log",))
    return LiveSource(
        drop_log_rate=args.drop_log_rate if logging else 0,
        flow_filter=args.flow_filter,
        detail_every=getattr(args, "detail_every", 1),
        bpf=not getattr(args, "no_bpf", False),
        sample_rate=getattr(args, "sample", None),
        max_flows=getattr(args, "max_flows", FLOWS_MAX),
        flows_top=_top(args),
    )


def _start_live(args: argparse.Namespace, source: LiveSource | None = None) -> LiveSource:
    """The live source (a new one, or `source`) with the probes of `--sections` attached."""
    source = source or _live_source(args)
    for start in source.need({probe for section in args.sections for probe in SECTIONS[section]}):
        start()
    statuses = [s for s in source.statuses() if s.state != ProbeState.IDLE]
    failed = [s for s in statuses if s.state == ProbeState.FAILED]
    if failed and len(failed) == len(statuses):
        source.close()
        reasons = sorted({s.error for s in failed})
        raise CliError("no probe could start: " + "; ".join(reasons), EXIT_KERNEL)
    if not source.bpf:
        print(
            "netscope: note: --no-bpf: interrupts, softirq runs, softnet and devices come from /proc and "
            "netlink; times, NAPI polls, queues, drop reasons, latency and flows need BPF (root)",
            file=sys.stderr,
        )
    for note in source.notes:
        print(f"netscope: note: {note}", file=sys.stderr)
    for s in failed:
        print(f"netscope: probe {s.name} failed: {s.error}", file=sys.stderr)
    return source


def _run_intervals(
    interval: float, count: int, sample: Callable[[], Sample | None], emit: Callable[[Sample], None]
) -> None:
    """Take a baseline, then `count` intervals (0: until stopped), on the cadence every command
    samples on (sources/cadence.py)."""
    from netscope.sources.cadence import every

    done = 0

    def step() -> bool:
        nonlocal done
        s = sample()
        if s is None:
            return False
        emit(s)
        done += 1
        return count == 0 or done < count

    every(interval, step, threading.Event(), baseline=sample)


def cmd_snapshot(args: argparse.Namespace) -> int:
    _require_live(args)
    _check_live_interfaces(args)
    with _signals_raise():
        source = _start_live(args)
        try:
            emit = _json_emitter(source.info, args) if args.json else _text_emitter(source.info, args)
            _run_intervals(args.interval, args.count, source.sample, emit)
        finally:
            source.close()
    return EXIT_OK


def _emitter(
    info: HostInfo, args: argparse.Namespace, show: Callable[[ViewModel], None]
) -> Callable[[Sample], None]:
    """Each sample into the timeline the TUI builds too (the views, narrowed by --interface,
    --netns, --filter and --top, and the findings standing), and its view model to `show`."""
    from netscope.model.timeline import Timeline

    timeline = Timeline(
        info,
        tuple(getattr(args, "interface", ())),
        getattr(args, "netns", None),
        args.flow_filter,
        _top(args),
    )

    def emit(sample: Sample) -> None:
        timeline.add(sample)
        view = timeline.shown()
        assert view is not None  # (a sample was added)
        show(view)

    return emit


def _json_emitter(info: HostInfo, args: argparse.Namespace) -> Callable[[Sample], None]:
    from netscope.model.json_encoder import snapshot_json

    return _emitter(
        info, args, lambda view: print(json.dumps(snapshot_json(view), separators=(",", ":")), flush=True)
    )


def _text_emitter(info: HostInfo, args: argparse.Namespace) -> Callable[[Sample], None]:
    return _emitter(info, args, _print_text)


def _print_text(shown: ViewModel) -> None:
    """One interval as text: CPUs, IRQ lines, drops by reason, failed probes, findings."""
    from netscope.ui.cpu_pane import CPU_COLUMNS

    sample = shown.latest
    view = shown.cpu_history[-1]
    when = time.strftime("%H:%M:%S", time.localtime(sample.ts))
    detail = "" if sample.detail_measured else f"  (per-packet detail: 1 interval in {sample.detail_every})"
    print(f"{when}  interval {sample.interval_s:.3f}s{detail}")
    print("CPU  " + " ".join(f"{c.label:>{c.width}}" for c in CPU_COLUMNS))
    for row in (*view.rows, view.total):
        label = "all" if row.cpu is None else str(row.cpu)
        print(f"{label:<4} " + " ".join(f"{c.value(row):>{c.width}}" for c in CPU_COLUMNS))
    for irq in view.irqs[:8]:
        where = f"{irq.device} {irq.queue}".strip() or "-"
        print(f"  IRQ {irq.irq:<4} {irq.name:<24} {where:<14} {irq.per_s:10.0f}/s")
    drops = shown.interval_drops
    if drops is not None:
        print(
            f"drops {drops.total_per_s:,.0f}/s  logged {drops.logged}  suppressed {drops.suppressed}  "
            f"lost {drops.lost}"
        )
        for reason in drops.rows[:8]:
            where = reason.locations[0].key if reason.locations else "-"
            device = reason.devices[0].key if reason.devices else "-"
            rate = f"{reason.per_s:10.0f}/s {reason.share_pct:5.1f}%"
            print(f"  {reason.label:<24} {rate}  {where:<32} {device}")
    for p in sample.probes:
        if p.state == ProbeState.FAILED:
            print(f"  probe {p.name} failed: {p.error}")
    for a in shown.findings:
        f = a.finding
        print(f"finding [{f.severity.value}] {f.summary}\n  knob: {f.knob_now}\n  try: {f.suggestion}")
    print(flush=True)


def cmd_record(args: argparse.Namespace) -> int:
    from netscope.sources.recording import RecordingFull, RecordingWriter

    _require_live(args)
    count = math.ceil(args.duration / args.interval) if args.duration else args.count
    try:
        out = args.output.open("wb")
    except OSError as e:
        raise CliError(f"cannot write {args.output}: {e.strerror}", EXIT_USAGE) from None
    try:
        with _signals_raise():
            source = _start_live(args)
            try:
                echo = _json_emitter(source.info, args) if args.json else None
                try:
                    writer = RecordingWriter(out, source.info, source.describe(), args.max_size)
                except RecordingFull:
                    raise CliError(
                        f"--max-size {args.max_size:,} is too small for the header", EXIT_USAGE
                    ) from None
                except OSError as e:
                    raise CliError(f"writing {args.output} failed: {e.strerror}", EXIT_USAGE) from None

                def record(sample: Sample) -> None:
                    writer.write(sample)
                    if echo is not None:
                        echo(sample)

                try:
                    _run_intervals(args.interval, count, source.sample, record)
                except RecordingFull:
                    print(
                        f"netscope: {args.output} reached --max-size ({writer.written:,} bytes, "
                        f"{writer.samples} intervals); recording stopped",
                        file=sys.stderr,
                    )
                except OSError as e:
                    raise CliError(
                        f"writing {args.output} failed after {writer.samples} intervals: {e.strerror}; "
                        "the intervals written replay",
                        EXIT_USAGE,
                    ) from None
            finally:
                source.close()
    finally:
        # After a full disk, close() fails to flush the rest again: the error already raised is
        # the one to report.
        with contextlib.suppress(OSError):
            out.close()
    return EXIT_OK


def _load_recording(path: Path) -> Recording:
    from netscope.sources.recording import RecordingError, read_recording

    try:
        recording = read_recording(path)
    except RecordingError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    if recording.incomplete_bytes:
        print(
            f"netscope: {path}: the last {recording.incomplete_bytes} bytes are an incomplete frame "
            "(the recording was cut off); replaying the complete frames",
            file=sys.stderr,
        )
    return recording


def cmd_replay(args: argparse.Namespace) -> int:
    from netscope.sources.replay import ReplaySource

    recording = _load_recording(args.file)
    if args.interface:
        from netscope.model.rings import known_interfaces

        known: dict[str, set[str]] = {}
        for sample in recording.samples:
            for name, where in known_interfaces(sample, recording.info).items():
                known.setdefault(name, set()).update(where)
        _check_interfaces(args, known)
    if args.json:
        emit = _json_emitter(recording.info, args)
        for sample in recording.samples:
            emit(sample)
        return EXIT_OK
    return _run_tui(ReplaySource(recording), 1.0, args)


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:9469, [::]:9469)")
    return host.strip("[]"), number


def cmd_export(args: argparse.Namespace) -> int:
    from netscope.model.filter import Scope
    from netscope.model.scope import scoped
    from netscope.prometheus import Exporter, serve

    _require_live(args)
    host, port = args.listen
    source = _live_source(args)
    exporter = Exporter(source.info, args.interval)
    try:  # before compiling anything: a port in use is the user's to fix first
        server = serve(exporter, host, port)
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror}", EXIT_USAGE) from None
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with _signals_raise():
            _start_live(args, source)
            print(f"netscope: serving Prometheus metrics on http://{where}/metrics", file=sys.stderr)
            scope = args.flow_filter.scope if args.flow_filter else Scope()
            _run_intervals(args.interval, 0, source.sample, lambda s: exporter.add(scoped(s, scope)))
    finally:
        server.shutdown()
        server.server_close()
        source.close()
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    _require_live(args)
    if not sys.stdout.isatty() and not sys.stderr.isatty():
        raise CliError("the TUI needs a terminal; use `netscope snapshot --json` for scripts", EXIT_USAGE)
    _check_live_interfaces(args)
    return _run_tui(_live_source(args), args.interval, args)


def _log_path() -> Path:
    from netscope.probes.headers import cache_dir

    return cache_dir() / "netscope.log"


@contextlib.contextmanager
def _stderr_to_log() -> Iterator[None]:
    """While the TUI runs, C-level stderr (BCC/clang/libbpf messages) goes to a log file, not over
    the screen. Textual draws on sys.__stderr__, which keeps a duplicate of the terminal fd."""
    try:
        _log_path().parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(_log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        yield
        return
    saved_stderr = sys.__stderr__
    term_fd = os.dup(2)
    setattr(sys, "__stderr__", os.fdopen(term_fd, "w", buffering=1, closefd=False))  # noqa: B010
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        os.dup2(term_fd, 2)
        os.close(term_fd)
        setattr(sys, "__stderr__", saved_stderr)  # noqa: B010


def _run_tui(source: Source, interval: float, args: argparse.Namespace) -> int:
    from netscope.app import make_app

    lookback = getattr(args, "look_back", LOOKBACK)
    app = make_app(
        source, interval, tuple(args.interface), args.netns, args.flow_filter, _top(args), lookback
    )
    try:
        with _stderr_to_log():
            code = app.run()
    finally:
        source.close()
    if app.crash is not None:
        log = _log_path()
        with contextlib.suppress(OSError), log.open("a") as f:
            traceback.print_exception(app.crash, file=f)
        raise CliError(
            f"internal error: {type(app.crash).__name__}: {app.crash} (traceback in {log})", EXIT_INTERNAL
        )
    return code or EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": cmd_tui,
    "snapshot": cmd_snapshot,
    "record": cmd_record,
    "replay": cmd_replay,
    "export": cmd_export,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; without a command it is the TUI's (`netscope --no-bpf`, `netscope -i 2`)."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]
    return build_parser().parse_args(argv)


def _return_freed_memory() -> None:
    """After a large block is freed, glibc raises its mmap threshold up to 32 MB, and blocks of
    that size then come from heaps that seldom shrink: the sampler's buffers (MBs an interval at
    100k flows) grew the RSS for good. A fixed threshold keeps them mmapped, given back when freed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv if argv is not None else sys.argv[1:]))
    _return_freed_memory()
    try:
        # Parsed once, before anything is compiled: the kernel's C expression and the Python
        # predicate come from this one object (a bad expression exits 2, pointing at its token).
        args.flow_filter = _flow_filter(args)
        return COMMANDS[args.command](args)
    except CliError as e:
        print(f"netscope: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_SIGNAL_BASE + signal.SIGINT
    except Terminated as e:
        return EXIT_SIGNAL_BASE + e.signum
    except BrokenPipeError:
        # stdout closed early (`netscope snapshot --json | head -1`): not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except Exception as e:
        if os.environ.get("NETSCOPE_DEBUG"):
            raise
        print(
            f"netscope: internal error: {type(e).__name__}: {e} (NETSCOPE_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
