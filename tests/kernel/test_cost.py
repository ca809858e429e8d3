"""netscope's own cost: bpf_stats is on for a short window one interval in STATS_EVERY (it slows
every program run) and restored after; run counts in a measured window are real, and what its own
clock reads add is measured and taken out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import netscope.sources.bpf_cost as bpf_cost
from harness.netns import VethPair, send_udp, snmp
from harness.tmux import wait_for
from netscope.probes.base import COMPILE_LOCK, COMPILER_LIBRARIES
from netscope.sources.live import PROBES, STATS_EVERY, LiveSource
from tests.kernel.test_export import link_rx

SUBNET = 73
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def test_bpf_stats_sampled_while_running_restored_after_and_runs_counted(
    pair: VethPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bpf_cost, "STATS_WINDOW_S", 1.5)  # long enough to send into
    original = BPF_STATS.read_text().strip()
    BPF_STATS.write_text("0")
    source = LiveSource()
    try:
        for start in source.need(PROBES):
            start()
        # Its own clock reads' cost was measured at start, and bpf_stats put back off.
        assert BPF_STATS.read_text().strip() == "0"
        assert 1 < source.cost.clock_ns < 1000, source.cost.clock_ns
        source.sample()  # the baseline: the first interval opens a window, a little into it
        wait_for(lambda: BPF_STATS.read_text().strip() == "1", 5, "the window to open")
        noports, received = snmp(pair.receiver_ns)["NoPorts"], link_rx(pair)
        send_udp(pair, 3000)  # to a closed port: 3000 drops, 3000+ packets received
        noports, received = snmp(pair.receiver_ns)["NoPorts"] - noports, link_rx(pair) - received
        wait_for(lambda: BPF_STATS.read_text().strip() == "0", 3, "the window to close")
        sample = source.sample()
        for _ in range(STATS_EVERY - 2):
            later = source.sample()  # no window: the same measurement, older
            assert BPF_STATS.read_text().strip() == "0"
        source.sample()  # interval STATS_EVERY starts: a window again
        wait_for(lambda: BPF_STATS.read_text().strip() == "1", 5, "the next window to open")
    finally:
        source.close()
        restored = BPF_STATS.read_text().strip()
        BPF_STATS.write_text(original)  # leave the machine as the test found it
    assert restored == "0"
    cost = sample.cost
    assert cost is not None and cost.bpf_stats and cost.rss_bytes > 0 and cost.cpu_pct >= 0
    assert 1.4 <= cost.measured_interval_s <= 2.0 and cost.clock_ns == source.cost.clock_ns
    assert later.cost is not None and later.cost.programs == cost.programs
    assert later.cost.measured_age_s > cost.measured_age_s
    runs = {(p.probe, p.program): p for p in cost.programs}
    # Every drop and every packet the window saw, and little else on the box (the kernel's counts
    # are of the test's own namespaces).
    assert noports == 3000 and 3000 <= noports <= runs[("drops", "kfree_skb")].runs <= noports + 300
    # A sampled hook runs for every packet all the same (1 run in N does the whole work).
    assert received <= runs[("rings", "netif_receive_skb")].runs <= received + 500, received
    assert runs[("drops", "kfree_skb")].run_time_ns > runs[("drops", "kfree_skb")].runs * cost.clock_ns


def compiler_rss_kb() -> int:
    """Resident kB of LLVM's and clang's libraries in this process (/proc/self/smaps)."""
    total, compiler = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line
            compiler = len(fields) >= 6 and any(lib in fields[5] for lib in COMPILER_LIBRARIES)
        elif fields[0] == "Rss:" and compiler:
            total += int(fields[1])
    return total


def test_compiler_pages_handed_back_once_compiles_stop() -> None:
    source = LiveSource()
    try:
        for start in source.need(("hardirq",)):
            start()
        during = compiler_rss_kb()  # the timer has not fired yet
        time.sleep(2 * COMPILE_LOCK.idle_s + 0.5)
        after = compiler_rss_kb()
        assert source.sample().probes[0].state.value == "live"  # the program is untouched
    finally:
        source.close()
    assert during > 20_000 and after < during / 4, (during, after)
