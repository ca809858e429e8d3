"""`make bench`: what netscope costs the box it watches, side by side with a no-op control and bcc's
own tools, under a max-rate 64-byte UDP flood over veth (bench/loadgen.c, sendmmsg/recvmmsg).

Balanced order per row: without, row, row, without, three times: each row trial is divided by the
mean of its block's two "without" trials, so warm-up and drift cancel (6 ratios per row). Prints a
table, writes bench/results.json, and exits 1 when a target (README, "Overhead") is missed.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netscope.probes.headers import find_headers  # noqa: E402
from netscope.ui.home_pane import HomePane  # noqa: E402
from tests.kernel.netns import VethPair, flood_result, loadgen, veth_pair  # noqa: E402
from tests.kernel.tmux import netscope_in_tmux, new_programs, program_ids, programs_of, wait_for  # noqa: E402

# Every flood spans a whole cycle of `snapshot --detail-every` (default 20) at 1 s: one interval
# with the per-packet hooks on, so the ratio carries their cost in proportion, whatever the phase.
FLOOD_S = float(os.environ.get("BENCH_FLOOD_S", "20"))
BLOCKS = int(os.environ.get("BENCH_BLOCKS", "3"))
PORT = 7000
SUBNET = 68
TARGETS = {"netscope-default": 0.95, "netscope-all": 0.93}
CPU_TARGET_PCT = 5.0
RSS_STEADY_MB, RSS_PEAK_MB = 150, 200
FIRST_FRAME_S, ALL_LIVE_S = 1.0, 2.0
ALL_SECTIONS = "cpus,rings,drops,drop-log,latency,flows"
COUNTER_SECTIONS = "cpus,rings,drops"  # the aggregated counters: export's default
NOOP = """
from bcc import BPF
import sys, time
b = BPF(text="RAW_TRACEPOINT_PROBE(bpf_test_finish) { return 0; }")  # only BPF_PROG_TEST_RUN fires it
print("ready", flush=True)
time.sleep(3600)
"""


@dataclass
class Row:
    name: str
    ratios: list[float] = field(default_factory=list)
    cpu_pct: list[float] = field(default_factory=list)
    rss_steady_mb: float | None = None
    rss_peak_mb: float | None = None
    runs: dict[str, int] = field(default_factory=dict)  # per probe/program, in measured intervals
    run_ns: dict[str, int] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")


def flood(pair: VethPair) -> float:
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
            str(FLOOD_S + 1),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
    sender = ("ip", "netns", "exec", pair.sender_ns, "taskset", "-c", "0", gen, "send", pair.receiver_ip)
    send = subprocess.Popen(
        [*sender, str(PORT), str(FLOOD_S), "64"],
        stdout=subprocess.PIPE,
        text=True,
    )
    flood_result(send)
    got, seconds = recv.communicate()[0].split()
    return int(got) / float(seconds) if float(seconds) > 0 else 0.0


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


@contextmanager
def observer(name: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], list[dict[str, Any]]]]:
    """The row's observer, running and ready; yields it and the JSON lines it prints (netscope)."""
    lines: list[dict[str, Any]] = []
    if name.startswith("netscope"):
        sections = ALL_SECTIONS if name == "netscope-all" else COUNTER_SECTIONS
        cmd = [sys.executable, "-m", "netscope", "snapshot", "--json", "-n", "0", "-i", "1"]
        cmd += ["--sections", sections]
    elif name == "noop":
        cmd = [sys.executable, "-c", NOOP]
    else:
        cmd = [f"/usr/sbin/{name.removeprefix('bcc-')}-bpfcc", "1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if name.startswith("netscope"):
                lines.append(json.loads(line))
            ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise SystemExit(f"bench: {name} did not start")
    time.sleep(1.0)
    try:
        yield proc, lines
    finally:
        proc.terminate()
        proc.wait(10)


def measure(pair: VethPair, rows: list[Row], env: dict[str, str]) -> None:
    for block in range(BLOCKS):
        for row in rows:
            base = [flood(pair)]
            with observer(row.name, env) as (proc, lines):
                trials = []
                for _ in range(2):
                    cpu0, t0, seen = proc_cpu_s(proc.pid), time.monotonic(), len(lines)
                    trials.append(flood(pair))
                    row.cpu_pct.append(100 * (proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0))
                    time.sleep(1.1)  # the interval covering the flood's end is printed
                    for line in lines[seen:]:
                        cost = line.get("cost") or {}
                        if cost.get("measured_age_s"):  # an older measurement, repeated: counted once
                            continue
                        for p in cost.get("programs", []):
                            key = f"{p['probe']}/{p['program']}"
                            row.runs[key] = row.runs.get(key, 0) + p["runs"]
                            row.run_ns[key] = row.run_ns.get(key, 0) + p["run_time_ns"]
                rss, hwm = proc_rss_mb(proc.pid)
                row.rss_steady_mb = max(row.rss_steady_mb or 0, rss)
                row.rss_peak_mb = max(row.rss_peak_mb or 0, hwm)
            base.append(flood(pair))
            mean = statistics.mean(base)
            row.ratios += [t / mean for t in trials]
            print(
                f"block {block + 1}/{BLOCKS} {row.name:<18} " + " ".join(f"{t / mean:.3f}" for t in trials),
                flush=True,
            )


def startup(tmp: Path) -> dict[str, float]:
    """Seconds to the TUI's first frame and until the home screen's probes are all attached."""
    before = program_ids()
    with netscope_in_tmux(tmp, "bench", (120, 40)) as tui:
        t0 = time.monotonic()
        tui.wait_screen(lambda s: "Receive path" in s, 10, "the first frame")
        first = time.monotonic() - t0
        wait_for(
            lambda: new_programs(before) == programs_of(*HomePane.PROBES), 30, "home's probes", step=0.02
        )
        live = time.monotonic() - t0
        tui.keys("q")
        tui.exit_code(5)
    return {"first_frame_s": first, "all_live_s": live}


def per_run(row: Row) -> dict[str, float]:
    return {k: row.run_ns[k] / runs for k, runs in sorted(row.runs.items()) if runs}


def main() -> int:
    # SIGTERM unwinds like Ctrl-C: observers stopped, namespaces deleted, bpf_stats put back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    env = {**os.environ, **find_headers().env}
    bpf_stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_before = bpf_stats.read_text()
    names = os.environ.get("BENCH_ROWS") or "noop,netscope-default,netscope-all,bcc-softirqs,bcc-hardirqs"
    rows = [Row(n) for n in names.split(",")]
    try:
        with veth_pair(subnet=SUBNET) as pair:
            base = statistics.median(flood(pair) for _ in range(3))
            print(f"without anything attached: {base:,.0f} received pps", flush=True)
            measure(pair, rows, env)
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        start = startup(tmp)
    finally:
        bpf_stats.write_text(stats_before)
    failures = []
    print(f"\n{'row':<18} {'ratio':>6} {'min':>6} {'max':>6} {'CPU%':>6} {'RSS MB':>7} {'peak':>6}")
    for r in rows:
        cpu = statistics.median(r.cpu_pct) if r.cpu_pct else float("nan")
        print(
            f"{r.name:<18} {r.median:6.3f} {min(r.ratios):6.3f} {max(r.ratios):6.3f} {cpu:6.1f} "
            f"{r.rss_steady_mb or 0:7.0f} {r.rss_peak_mb or 0:6.0f}"
        )
        for program, ns in per_run(r).items():
            print(f"    {program:<36} {ns:7.0f} ns/run")
        if r.name in TARGETS and r.median < TARGETS[r.name]:
            failures.append(f"{r.name}: ratio {r.median:.3f} < {TARGETS[r.name]}")
        if r.name.startswith("netscope"):
            if cpu > CPU_TARGET_PCT:
                failures.append(f"{r.name}: CPU {cpu:.1f}% > {CPU_TARGET_PCT}%")
            if (r.rss_steady_mb or 0) > RSS_STEADY_MB or (r.rss_peak_mb or 0) > RSS_PEAK_MB:
                failures.append(f"{r.name}: RSS {r.rss_steady_mb:.0f} MB (peak {r.rss_peak_mb:.0f})")
    # A peer whose hooks never fire on this flood (hardirqs-bpfcc: veth raises no hardirqs) is a
    # second no-op: against it "better" cannot mean more than the harness can see. A netscope row
    # is worse than a peer when its median is lower by more than the no-op control's own spread
    # (median absolute deviation of its ratios).
    noop = next((r for r in rows if r.name == "noop"), None)
    noise = statistics.median(abs(x - noop.median) for x in noop.ratios) if noop and noop.ratios else 0.0
    print(f"harness noise (no-op control's median absolute deviation): {noise:.3f}")
    for peer in (r for r in rows if r.name.startswith("bcc-")):
        for r in rows:
            if r.name.startswith("netscope") and r.median < peer.median - noise:
                failures.append(f"{r.name}: ratio {r.median:.3f} below {peer.name}'s {peer.median:.3f}")
            elif r.name.startswith("netscope") and r.median <= peer.median:
                print(f"{r.name} {r.median:.3f} vs {peer.name} {peer.median:.3f}: a tie within the noise")
    print(f"TUI first frame {start['first_frame_s']:.2f} s, home probes live {start['all_live_s']:.2f} s")
    if start["first_frame_s"] > FIRST_FRAME_S or start["all_live_s"] > ALL_LIVE_S:
        failures.append(f"start-up {start}")
    results = {
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "without_pps": base,
        "rows": [{**asdict(r), "median": r.median, "ns_per_run": per_run(r)} for r in rows],
        "startup": start,
        "failures": failures,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for f in failures:
        print(f"MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
