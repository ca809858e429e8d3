"""`--no-bpf` as the unprivileged user nobody: no BPF program loads, bpf_stats is left alone, and
the kernel's own counters still come: softirq runs inside the /proc/softirqs window around the
command, interrupts, softnet and devices; the TUI's probes line says what needs BPF."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.netns import VethPair, send_udp, udp_traffic
from harness.tmux import REPO, netscope_in_tmux, new_programs, program_ids
from tests.kernel import truth
from tests.kernel.test_record_replay import NOBODY, as_nobody

SUBNET = 86
SENT = 500
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def test_snapshot_no_bpf_as_nobody(pair: VethPair) -> None:
    before_programs, stats = program_ids(), BPF_STATS.read_text()
    with truth.Recorder() as kernel, udp_traffic(pair, 1000):
        done = as_nobody("snapshot", "--no-bpf", "--json", "-i", "0.5", "-n", "3")
    assert done.returncode == 0, done.stderr
    assert "need BPF (root)" in done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(objects) == 3
    for obj in objects:
        assert {p["state"] for p in obj["probes"]} == {"off"}
        assert obj["detail"]["measured"] is False
        assert all(c["softirq_time_ns"] is None and c["napi_polls"] is None for c in obj["cpus"])
        assert all(c["hardirqs"] is not None and c["backlog_drops"] is not None for c in obj["cpus"])
        assert obj["devices"], "devices come over netlink"
    for obj in objects:  # /proc/softirqs between the interval's edges, read by the test
        ours = sum(c["softirqs"]["NET_RX"] for c in obj["cpus"])
        (least, most), _ = kernel.between(obj["ts"] - obj["interval_s"], obj["ts"])
        assert least > 50 and 0.95 * least - 5 <= ours <= 1.05 * most + 5, (ours, least, most)
    assert new_programs(before_programs) == 0 and BPF_STATS.read_text() == stats


def test_no_bpf_snmp_counts_exact_inside_a_namespace(pair: VethPair) -> None:
    """`ip netns exec NS netscope snapshot --no-bpf` as nobody: the namespace's Udp NoPorts over
    the intervals after the first one equals the datagrams sent to a closed port meanwhile."""
    in_ns = ("ip", "netns", "exec", pair.receiver_ns, *NOBODY, sys.executable, "-m", "netscope")
    proc = subprocess.Popen(
        [*in_ns, "snapshot", "--no-bpf", "--json", "-i", "1", "-n", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the first interval is over: send now
    send_udp(pair, SENT, port=9)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    assert len(rest) == 2
    assert first["snmp"]["Udp.NoPorts"] == 0
    assert sum(obj["snmp"]["Udp.NoPorts"] for obj in rest) == SENT
    assert all(obj["snmp"]["Udp.RcvbufErrors"] == 0 for obj in rest)


def test_tui_no_bpf_as_nobody(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # the exit file is written as nobody
    before = program_ids()
    with netscope_in_tmux(tmp_path, "nobpf", (120, 40), "--no-bpf", runner=NOBODY) as tui:
        tui.wait_screen(lambda s: "Receive path" in s, 10, "the first frame")
        tui.keys("c")
        tui.wait_screen(lambda s: "--no-bpf" in s and "need BPF" in s, 10, "what needs BPF, on the CPUs pane")
        assert new_programs(before) == 0
        tui.keys("q")
        assert tui.exit_code(5) == 0
