"""`make bench`: what netscope costs the box it watches, in every mode people run it (the TUI on each
screen, `snapshot`, `export`), side by side with a no-op control and bcc's own tools, under a
max-rate 64-byte UDP flood over veth (bench/loadgen.c, sendmmsg/recvmmsg).

Balanced order per row: without, row, row, without, three times: each row trial is divided by the
mean of its block's two "without" trials, so warm-up and drift cancel (6 ratios per row). The TUI
rows run the real `netscope` in tmux at 120x40, driven with its keys to the screen measured.
Prints a table, writes bench/results.json, and exits 1 when a target (README, "Overhead") is missed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.netns import VethPair, flood_flows, flood_result, loadgen, veth_pair  # noqa: E402
from harness.tmux import Tui, netscope_in_tmux, new_programs, program_ids, programs_of, wait_for  # noqa: E402
from netscope.model.flows import FLOW_SORTS  # noqa: E402
from netscope.panes import BY_ID  # noqa: E402
from netscope.probes.headers import find_headers  # noqa: E402

# Every flood spans a whole cycle of `snapshot --detail-every` (default 20) at 1 s: one interval
# with the per-packet hooks on, so the ratio carries their cost in proportion, whatever the phase.
FLOOD_S = float(os.environ.get("BENCH_FLOOD_S", "20"))
BLOCKS = int(os.environ.get("BENCH_BLOCKS", "3"))
TUI_ARGS = tuple(os.environ.get("BENCH_TUI_ARGS", "").split())  # e.g. "--sample 64", to compare
SCALE = os.environ.get("BENCH_SCALE", "1")  # 0: without the scale rows; only: nothing else
PORT = 7000
SOURCE_PORT = 7001  # fixed, so the flow screen watches the flood's own 5-tuple in every flood
SUBNET = 68
EXPORT_LISTEN = ("127.0.0.1", 19469)
# The TUI: a key per screen, from the home screen. "flow" opens the Flows pane, lets the flood's
# flow appear, and drills into it with Enter.
TUI_KEYS = {
    "tui-home": (),
    "tui-rings": ("r",),
    "tui-cpus": ("c",),
    "tui-drops": ("d",),
    "tui-latency": ("l",),
    "tui-flows": ("t",),
    "tui-processes": ("o",),
    "tui-tx": ("x",),
    "tui-findings": ("f",),
    "tui-flow": ("t", "Enter"),
}
ROWS = (
    "noop",
    "snapshot",
    "snapshot-detail",
    "export",
    *TUI_KEYS,
    "bcc-softirqs",
    "bcc-hardirqs",
)
# Median ratio targets (issue: the TUI at the floor); every netscope row must also beat bcc-softirqs.
TARGETS = {
    "snapshot": 0.98,
    "export": 0.98,
    "snapshot-detail": 0.93,
    "tui-home": 0.97,
    **{name: 0.93 for name in TUI_KEYS if name != "tui-home"},
}
HOME_BPF_PCT, HOME_CPU_PCT = 3.0, 5.0  # on the home screen during the flood: its cost line, its process
CPU_TARGET_PCT = 5.0  # the headless rows' process
RSS_STEADY_MB, RSS_PEAK_MB = 150, 200
FIRST_FRAME_S, ALL_LIVE_S = 1.0, 2.0
NOOP = """
from bcc import BPF
import sys, time
b = BPF(text="RAW_TRACEPOINT_PROBE(bpf_test_finish) { return 0; }")  # only BPF_PROG_TEST_RUN fires it
print("ready", flush=True)
time.sleep(3600)
"""
COST_LINE = re.compile(r"([\d.]+)% of a CPU(?: \(measured (\d+)s ago\))?")


@dataclass
class Row:
    name: str
    ratios: list[float] = field(default_factory=list)
    cpu_pct: list[float] = field(default_factory=list)
    bpf_pct: list[float] = field(default_factory=list)  # netscope's own cost line (the TUI's home)
    rss_steady_mb: float | None = None
    rss_peak_mb: float | None = None
    runs: dict[str, int] = field(default_factory=dict)  # per probe/program, in measured intervals
    run_ns: dict[str, int] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")


def flood(pair: VethPair, seconds: float = FLOOD_S) -> float:
    """Received packets per second of one max-rate flood: sender on CPU 0, receiver on CPU 1."""
    gen = str(loadgen())
    recv = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            pair.receiver_ns,
            "taskset",
            "-c",
            "1",
            gen,
            "recv",
            str(PORT),
            str(seconds + 1),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
    sender = ("ip", "netns", "exec", pair.sender_ns, "taskset", "-c", "0", gen, "send", pair.receiver_ip)
    send = subprocess.Popen(
        [*sender, str(PORT), str(seconds), "64", str(SOURCE_PORT)], stdout=subprocess.PIPE, text=True
    )
    flood_result(send)
    got, elapsed = recv.communicate()[0].split()
    return int(got) / float(elapsed) if float(elapsed) > 0 else 0.0


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB; 0 for a process that has exited (its row then fails, saying why)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    if "VmRSS" not in status:
        return 0.0, 0.0
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


@dataclass
class Observer:
    """A row's observer while it runs: its process, the JSON lines it printed (snapshot), and a way
    to read its screen (the TUI)."""

    pid: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    tui: Tui | None = None


def _settled(before: set[int], seconds: float = 2.0, timeout: float = 60.0) -> None:
    """Wait until the set of netscope's programs loaded has not changed for `seconds`."""
    deadline = time.monotonic() + timeout
    last, since = program_ids() - before, time.monotonic()
    while time.monotonic() - since < seconds:
        assert time.monotonic() < deadline, "netscope's probes did not settle"
        time.sleep(0.2)
        now = program_ids() - before
        if now != last:
            last, since = now, time.monotonic()


@contextmanager
def tui_observer(name: str, pair: VethPair, tmp: Path) -> Iterator[Observer]:
    before = program_ids()
    with netscope_in_tmux(tmp, name, (120, 40), "-i", "1", *TUI_ARGS) as tui:
        tui.wait_screen(lambda s: "Receive path" in s, 30, "the first frame")
        for key in TUI_KEYS[name]:
            if key == "Enter":  # the flood's flow, listed first (busiest), is the one opened
                _settled(before)  # the flows probe live before the flood, not compiling through it
                tui.wait_screen(lambda s: "◌" not in s, 30, "probes compiled")
                # Looked for while the flood runs: the interval it ends in may have its window
                # after the end, and the Flows pane shows the last interval's flows.
                flooding = threading.Thread(target=flood, args=(pair, 6))
                flooding.start()
                tui.wait_screen(lambda s: f":{SOURCE_PORT}" in s, 10, "the flood's flow")
                flooding.join()
            tui.keys(key)
        _settled(before)
        tui.wait_screen(lambda s: "◌" not in s, 30, "probes compiled")
        yield Observer(tui.pid(), tui=tui)
        tui.keys("q")


def bcc_tool(row: str) -> str:
    """The bcc tool a peer row runs (Debian's bpfcc-tools, which `make bench` installs)."""
    return f"/usr/sbin/{row.removeprefix('bcc-')}-bpfcc"


@contextmanager
def process_observer(name: str, env: dict[str, str]) -> Iterator[Observer]:
    """A headless row's observer (snapshot, export, the no-op, bcc's tools), running and ready."""
    ready = threading.Event()
    if name.startswith("snapshot"):
        cmd = [sys.executable, "-m", "netscope", "snapshot", "--json", "-n", "0", "-i", "1"]
        cmd += ["--detail-every", "1"] if name == "snapshot-detail" else []
    elif name == "export":
        host, port = EXPORT_LISTEN
        cmd = [sys.executable, "-m", "netscope", "export", "-i", "1", "--listen", f"{host}:{port}"]
    elif name == "noop":
        cmd = [sys.executable, "-c", NOOP]
    else:
        cmd = [bcc_tool(name), "1"]
    with tempfile.TemporaryFile("w+") as errors:  # what it says if it dies mid-row
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        observer = Observer(proc.pid)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if name.startswith("snapshot"):
                    observer.lines.append(json.loads(line))
                ready.set()

        threading.Thread(target=read, daemon=True).start()
        if name == "export":  # ready once /metrics answers with the probes up
            wait_for(lambda: _scrape_ok(), 60, "export's /metrics", step=0.5)
            ready.set()
        if not ready.wait(60):
            proc.kill()
            raise SystemExit(f"bench: {name} did not start")
        time.sleep(1.0)
        try:
            yield observer
        finally:
            died = proc.poll()
            proc.terminate()
            proc.wait(10)
        if died is not None:
            errors.seek(0)
            raise SystemExit(f"bench: {name} exited ({died}) during its row:\n{errors.read()[-3000:]}")


def _scrape_ok() -> bool:
    host, port = EXPORT_LISTEN
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as r:
            text = r.read()
        # export's default sections: drops, latency (with stack), tcp
        return all(
            f'netscope_probe_up{{probe="{p}"}} 1.0'.encode() in text for p in ("drops", "latency", "tcp")
        )
    except (TimeoutError, OSError):
        return False


@contextmanager
def observer(name: str, pair: VethPair, env: dict[str, str], tmp: Path) -> Iterator[Observer]:
    if name in TUI_KEYS:
        with tui_observer(name, pair, tmp) as o:
            yield o
    else:
        with process_observer(name, env) as o:
            yield o


def cost_line(tui: Tui, start: float, end: float) -> float | None:
    """netscope's own BPF cost as its home screen's cost line shows it, read once after a flood,
    when the measurement it shows was taken wholly inside the flood (the line shows the last
    measured interval and its age, in whole seconds). Not polled during the flood: each look at
    the screen is a tmux client started, which costs the flood what it would charge netscope."""
    m = COST_LINE.search(tui.screen())
    if m is None:
        return None
    measured_end = time.monotonic() - float(m.group(2) or 0)
    return float(m.group(1)) if start + 1.5 <= measured_end <= end + 1.0 else None


def count_programs(row: Row, lines: list[dict[str, Any]]) -> None:
    """Runs and run time per program from the snapshot lines' cost (each measurement once)."""
    for line in lines:
        cost = line.get("cost") or {}
        if cost.get("measured_age_s"):  # an older measurement, repeated: counted once
            continue
        for p in cost.get("programs", []):
            key = f"{p['probe']}/{p['program']}"
            row.runs[key] = row.runs.get(key, 0) + p["runs"]
            row.run_ns[key] = row.run_ns.get(key, 0) + p["run_time_ns"]


def measure(pair: VethPair, rows: list[Row], env: dict[str, str], tmp: Path) -> None:
    for block in range(BLOCKS):
        for row in rows:
            base = [flood(pair)]
            with observer(row.name, pair, env, tmp) as obs:
                trials = []
                for _ in range(2):
                    cpu0, t0, seen = proc_cpu_s(obs.pid), time.monotonic(), len(obs.lines)
                    trials.append(flood(pair))
                    end = time.monotonic()
                    row.cpu_pct.append(100 * (proc_cpu_s(obs.pid) - cpu0) / (end - t0))
                    if obs.tui is not None and (bpf := cost_line(obs.tui, t0, end)) is not None:
                        row.bpf_pct.append(bpf)
                    time.sleep(1.1)  # the interval covering the flood's end is printed
                    count_programs(row, obs.lines[seen:])
                rss, hwm = proc_rss_mb(obs.pid)
                row.rss_steady_mb = max(row.rss_steady_mb or 0, rss)
                row.rss_peak_mb = max(row.rss_peak_mb or 0, hwm)
            base.append(flood(pair))
            mean = statistics.mean(base)
            row.ratios += [t / mean for t in trials]
            print(
                f"block {block + 1}/{BLOCKS} {row.name:<16} " + " ".join(f"{t / mean:.3f}" for t in trials),
                flush=True,
            )


# The scale rows: netscope under 100,000 concurrent flows (loadgen `flows`, 100 sockets x 1,000
# closed ports, as fast as the sender goes) with 10 heavy flows among them. The TUI on the Flows
# pane: its CPU and peak RSS, three cycles of `s` (sort) presses, each timed until the pane shows the new
# order, then Enter on the busiest flow (a heavy one) timed until its screen shows; and `snapshot
# --interval 1` (default sections, then with --detail-every 1): every interval 1 s +- 5%.
SCALE_SUBNET = 67
SOCKETS, PORTS = 100, 1000
HEAVY_PORT, HEAVY, HEAVY_PPS = 40000, 10, 20_000
# The order `s` cycles, from packets, read from the model: a pane that gains an order (TCP's
# retransmits) must not leave the harness waiting 10 s on each press for a label that never comes.
_first, *_rest = FLOW_SORTS
SCALE_SORTS = (*_rest, _first)
KEY_PRESSES = 3 * len(SCALE_SORTS)  # whole cycles: the last press sorts by packets again
SCALE_TARGETS = {  # at most
    "cpu_pct": 25.0,
    "rss_peak_mb": 200.0,
    "keys_p90_ms": 200.0,
    "keys_max_ms": 500.0,
    "drill_ms": 500.0,
}
INTERVAL_S, INTERVAL_TOLERANCE = 1.0, 0.05
SNAPSHOT_INTERVALS = 20


KEY_TIMEOUT_S = 10.0


def _timed(tui: Tui, key: str, shown: str, timeout: float = KEY_TIMEOUT_S) -> float:
    """Seconds from pressing `key` until the screen shows `shown` (`timeout` if it never did)."""
    t0 = time.monotonic()
    tui.keys(key)
    while shown not in tui.screen():
        if time.monotonic() - t0 > timeout:
            return timeout
        time.sleep(0.005)
    return time.monotonic() - t0


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM again from the present RSS (clear_refs 5, Linux 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def tui_at_scale(tmp: Path) -> dict[str, float]:
    """The TUI on the Flows pane at 100k flows. Its peak RSS counts from the key that opens the
    pane (the flows probe's compile included); the start-up's (the home screen's compile: LLVM's
    pages, some 80 MB of it, are in every compile's peak) is reported beside it."""
    before = program_ids()
    with netscope_in_tmux(tmp, "scale", (120, 40), "-i", "1") as tui:
        tui.wait_screen(lambda s: "Receive path" in s, 30, "the first frame")
        pid = tui.pid()
        wait_for(lambda: new_programs(before) == programs_of(*BY_ID["home"].probes), 60, "home's probes")
        time.sleep(2)
        _, start_peak = proc_rss_mb(pid)
        reset_peak_rss(pid)
        tui.keys("t")
        tui.wait_screen(lambda s: "the busiest" in s, 60, "the Flows pane at 100k flows")
        time.sleep(5)  # its probes settled, its rates adapted
        cpu0, t0 = proc_cpu_s(pid), time.monotonic()
        waits = []
        for i in range(KEY_PRESSES):
            waits.append(_timed(tui, "s", f"sorted by {SCALE_SORTS[i % len(SCALE_SORTS)]} "))
            time.sleep(0.5)
        cpu = 100 * (proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
        _, peak = proc_rss_mb(pid)
        # Sorted by packets again: the busiest, a heavy flow, is the first row.
        tui.wait_screen(lambda s: f":{HEAVY_PORT}" in s, 10, "a heavy flow listed")
        drill = _timed(tui, "Enter", "Its packets, one by one")
        tui.keys("q")
    waits.sort()
    return {
        "cpu_pct": cpu,
        "rss_peak_mb": peak,
        "rss_start_peak_mb": start_peak,
        "keys_p50_ms": 1000 * statistics.median(waits),
        "keys_p90_ms": 1000 * waits[int(0.9 * len(waits)) - 1],
        "keys_max_ms": 1000 * waits[-1],
        "drill_ms": 1000 * drill,
    }


def snapshot_intervals(*args: str) -> list[float]:
    """Each interval of `snapshot --json --interval 1` (after the first, the baseline)."""
    cmd = [sys.executable, "-m", "netscope", "snapshot", "--json", "--interval", str(INTERVAL_S)]
    cmd += ["--count", str(SNAPSHOT_INTERVALS), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    return [json.loads(line)["interval_s"] for line in out.splitlines()][1:]


def scale(tmp: Path) -> tuple[dict[str, Any], list[str]]:
    """The scale figures and the targets they missed."""
    seconds = 200.0
    with veth_pair(subnet=SCALE_SUBNET) as pair:
        light = flood_flows(pair, seconds, SOCKETS, PORTS)
        heavy = flood_flows(pair, seconds, 1, HEAVY, base_port=HEAVY_PORT, pps=HEAVY_PPS)
        try:
            time.sleep(2)
            tui = tui_at_scale(tmp)
            intervals = {
                "snapshot": snapshot_intervals(),
                "snapshot-detail": snapshot_intervals("--detail-every", "1"),
            }
        finally:
            for flood in (light, heavy):
                flood.kill()
                flood.wait()
    failures = [f"scale: {k} {tui[k]:.0f} > {top:.0f}" for k, top in SCALE_TARGETS.items() if tui[k] > top]
    for name, got in intervals.items():
        off = [round(s, 3) for s in got if abs(s - INTERVAL_S) > INTERVAL_TOLERANCE * INTERVAL_S]
        if off or not got:
            failures.append(f"scale: {name} intervals off 1 s by more than 5%: {off}")
    return {"tui_flows": tui, "intervals": intervals}, failures


def report_scale(figures: dict[str, Any]) -> None:
    t = figures["tui_flows"]
    print(
        f"\nat 100k flows: TUI on Flows CPU {t['cpu_pct']:.1f}%, peak RSS {t['rss_peak_mb']:.0f} MB "
        f"(start-up's {t['rss_start_peak_mb']:.0f} MB), "
        f"keys p50 {t['keys_p50_ms']:.0f} ms p90 {t['keys_p90_ms']:.0f} ms max {t['keys_max_ms']:.0f} ms, "
        f"drill into a heavy flow {t['drill_ms']:.0f} ms"
    )
    if t["keys_max_ms"] >= 1000 * KEY_TIMEOUT_S or t["drill_ms"] >= 1000 * KEY_TIMEOUT_S:
        print(f"  ({KEY_TIMEOUT_S:.0f} s is the harness's timeout: a key's answer never showed)")
    for name, got in figures["intervals"].items():
        print(f"  {name} --interval 1: intervals {min(got):.3f}-{max(got):.3f} s over {len(got)}")


def startup(tmp: Path) -> dict[str, float]:
    """Seconds to the TUI's first frame and until the home screen's probes are all attached."""
    before = program_ids()
    with netscope_in_tmux(tmp, "bench", (120, 40)) as tui:
        t0 = time.monotonic()
        tui.wait_screen(lambda s: "Receive path" in s, 10, "the first frame")
        first = time.monotonic() - t0
        wait_for(
            lambda: new_programs(before) == programs_of(*BY_ID["home"].probes), 30, "home's probes", step=0.02
        )
        live = time.monotonic() - t0
        tui.keys("q")
        tui.exit_code(5)
    return {"first_frame_s": first, "all_live_s": live}


def per_run(row: Row) -> dict[str, float]:
    return {k: row.run_ns[k] / runs for k, runs in sorted(row.runs.items()) if runs}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def check(rows: list[Row]) -> list[str]:
    """The targets each row missed."""
    failures = []
    for r in rows:
        if r.name in TARGETS and r.median < TARGETS[r.name]:
            failures.append(f"{r.name}: ratio {r.median:.3f} < {TARGETS[r.name]}")
        cpu = _median(r.cpu_pct)
        if r.name == "tui-home":
            bpf = _median(r.bpf_pct)
            if not r.bpf_pct or bpf > HOME_BPF_PCT:
                failures.append(f"tui-home: netscope's BPF {bpf:.1f}% of a CPU > {HOME_BPF_PCT}%")
            if cpu > HOME_CPU_PCT:
                failures.append(f"tui-home: process {cpu:.1f}% of a core > {HOME_CPU_PCT}%")
        elif r.name in ("snapshot", "export") and cpu > CPU_TARGET_PCT:
            failures.append(f"{r.name}: CPU {cpu:.1f}% > {CPU_TARGET_PCT}%")
        headless = r.name in TARGETS and r.name not in TUI_KEYS  # the TUI also holds Textual's screen
        if headless and ((r.rss_steady_mb or 0) > RSS_STEADY_MB or (r.rss_peak_mb or 0) > RSS_PEAK_MB):
            failures.append(f"{r.name}: RSS {r.rss_steady_mb:.0f} MB (peak {r.rss_peak_mb:.0f})")
    # The peer every row must beat: bcc's softirqs, whose hooks run on this flood as netscope's
    # do. hardirqs-bpfcc's never fire here (veth raises no hardirqs): a second no-op, a reference
    # for the table, not a target.
    for peer in (r for r in rows if r.name == "bcc-softirqs"):
        for r in (r for r in rows if r.name in TARGETS):
            if r.median <= peer.median:
                failures.append(f"{r.name}: ratio {r.median:.3f} not above bcc-softirqs' {peer.median:.3f}")
    return failures


def flood_rows(rows: list[Row], env: dict[str, str], tmp: Path) -> tuple[dict[str, Any], list[str]]:
    """The max-rate flood rows and start-up: their results and the targets they missed."""
    with veth_pair(subnet=SUBNET) as pair:
        base = statistics.median(flood(pair) for _ in range(3))
        print(f"without anything attached: {base:,.0f} received pps", flush=True)
        measure(pair, rows, env, tmp)
    start = startup(tmp)
    print(
        f"\n{'row':<16} {'ratio':>6} {'min':>6} {'max':>6} {'CPU%':>6} {'BPF%':>6} {'RSS MB':>7} {'peak':>6}"
    )
    for r in rows:
        spread = f"{min(r.ratios):6.3f} {max(r.ratios):6.3f}"
        print(
            f"{r.name:<16} {r.median:6.3f} {spread} {_median(r.cpu_pct):6.1f} {_median(r.bpf_pct):6.1f} "
            f"{r.rss_steady_mb or 0:7.0f} {r.rss_peak_mb or 0:6.0f}"
        )
        for program, ns in per_run(r).items():
            print(f"    {program:<36} {ns:7.0f} ns/run")
    noop = next((r for r in rows if r.name == "noop"), None)
    noise = statistics.median(abs(x - noop.median) for x in noop.ratios) if noop and noop.ratios else 0.0
    print(f"harness noise (no-op control's median absolute deviation): {noise:.3f}")
    failures = check(rows)
    print(f"TUI first frame {start['first_frame_s']:.2f} s, home probes live {start['all_live_s']:.2f} s")
    if start["first_frame_s"] > FIRST_FRAME_S or start["all_live_s"] > ALL_LIVE_S:
        failures.append(f"start-up {start}")
    results = {
        "without_pps": base,
        "rows": [{**asdict(r), "median": r.median, "ns_per_run": per_run(r)} for r in rows],
        "startup": start,
    }
    return results, failures


def main() -> int:
    # SIGTERM unwinds like Ctrl-C: observers stopped, namespaces deleted, bpf_stats put back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    env = {**os.environ, **find_headers().env}
    bpf_stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_before = bpf_stats.read_text()
    names = os.environ.get("BENCH_ROWS") or ",".join(ROWS)
    rows = [Row(n) for n in names.split(",")]
    unknown = [r.name for r in rows if r.name not in ROWS]
    if unknown:
        raise SystemExit(f"bench: unknown rows {unknown}; choose from {', '.join(ROWS)}")
    # Before the first flood, not an hour into the run.
    tools = [bcc_tool(r.name) for r in rows if r.name.startswith("bcc-")]
    absent = [t for t in tools if not Path(t).exists()]
    if absent:
        raise SystemExit(f"bench: {', '.join(absent)} not installed: `make bench` installs bpfcc-tools")
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    failures: list[str] = []
    try:
        if SCALE != "only":
            found, missed = flood_rows(rows, env, tmp)
            results.update(found)
            failures += missed
        if SCALE != "0":
            figures, missed = scale(tmp)
            report_scale(figures)
            results["scale"] = figures
            failures += missed
    finally:
        bpf_stats.write_text(stats_before)
    results["failures"] = failures
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for f in failures:
        print(f"MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
