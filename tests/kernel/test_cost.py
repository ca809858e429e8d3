"""netscope's own cost: bpf_stats is on while it runs and restored after; run counts are real."""

from __future__ import annotations

import time
from pathlib import Path

from netscope.sources.live import PROBES, LiveSource
from tests.kernel.netns import VethPair, send_udp

SUBNET = 73
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def test_bpf_stats_on_while_running_restored_after_and_runs_counted(pair: VethPair) -> None:
    original = BPF_STATS.read_text().strip()
    BPF_STATS.write_text("0")
    source = LiveSource()
    try:
        for start in source.need(PROBES):
            start()
        assert BPF_STATS.read_text().strip() == "1"
        source.sample()
        send_udp(pair, 3000)  # to a closed port: 3000 drops, 3000+ packets received
        time.sleep(0.2)
        sample = source.sample()
    finally:
        source.close()
        restored = BPF_STATS.read_text().strip()
        BPF_STATS.write_text(original)  # leave the machine as the test found it
    assert restored == "0"
    cost = sample.cost
    assert cost is not None and cost.bpf_stats and cost.rss_bytes > 0 and cost.cpu_pct >= 0
    runs = {(p.probe, p.program): p for p in cost.programs}
    assert runs[("drops", "kfree_skb")].runs >= 3000
    assert runs[("rings", "netif_receive_skb")].runs >= 3000
    assert runs[("drops", "kfree_skb")].run_time_ns > 0
