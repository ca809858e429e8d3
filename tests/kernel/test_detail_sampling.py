"""Sampled per-packet hooks (`detail_every`): between measured intervals the kernel has no
per-packet hook of netscope's attached (bpftool's links), the hooks that are not per packet keep
counting, and a measured interval is whole again: its NET_RX runs follow /proc/softirqs, and a
reader's copy latency is not matched against arrivals from before the pause."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

from harness.netns import UDP_READER, UDP_SENDER, VethPair, in_ns, send_udp
from harness.tmux import raw_tracepoint_links
from netscope.model.latency import build_latency_view
from netscope.sources.live import PROBES, LiveSource
from tests.kernel.test_cpu_counts import proc_counters
from tests.kernel.test_latency import ready

SUBNET = 83
PER_PACKET = {
    "softirq_raise",
    "softirq_entry",
    "softirq_exit",
    "napi_poll",
    "net_dev_start_xmit",
    "netif_receive_skb",
    "sk_data_ready",
    "sock_recv_length",
}
ALWAYS = {"irq_handler_entry", "irq_handler_exit"}


def net_rx_runs() -> int:
    """NET_RX runs, all CPUs, from /proc/softirqs."""
    return sum(proc_counters()[0].values())


def tracepoints_linked() -> Counter[str]:
    return Counter(str(link["tp_name"]) for link in raw_tracepoint_links())


def test_per_packet_hooks_run_one_interval_in_n(pair: VethPair) -> None:
    before_links = tracepoints_linked()
    source = LiveSource(detail_every=3)
    # A reader draining its socket every 0.1 s, fed all along: its reads go on while the hooks are
    # paused, so a measured interval would match them to stale arrivals if any were kept.
    reader = in_ns(pair.receiver_ns, UDP_READER, "6301", "0.1", "8")
    ready(reader)
    sender = in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, "7", "6301")
    try:
        for start in source.need(PROBES):
            start()
        outer_before = net_rx_runs()
        rx = source.sample().softirq_names.index("NET_RX")  # the baseline: the next interval is measured
        inner_before = net_rx_runs()
        for index in range(6):
            measured = index % 3 == 0
            links = tracepoints_linked() - before_links
            send_udp(pair, 3000)
            time.sleep(0.5)
            inner_after = net_rx_runs()
            sample = source.sample()
            outer_after = net_rx_runs()
            assert sample.detail_measured is measured and sample.detail_every == 3
            assert set(links) >= ALWAYS, links  # hardirq timing never pauses
            assert sample.hardirq is not None and sample.drops is not None
            # /proc/softirqs read just inside and just outside the interval: its runs lie between.
            proc = sum(s.runs[rx] for s in sample.proc_softirqs)
            assert inner_after - inner_before <= proc <= outer_after - outer_before, proc
            if measured:
                assert set(links) >= PER_PACKET, links
                assert sample.softirq is not None and sample.napi is not None
                assert sample.queues is not None and sample.flows is not None and sample.latency is not None
                ours = sum(s.runs[rx] for s in sample.softirq)
                assert inner_after - inner_before <= ours <= outer_after - outer_before, ours
                copy = {
                    p.pid: p.stats for p in build_latency_view(sample.latency, sample.interval_s).processes
                }
                assert reader.pid in copy and copy[reader.pid].max_ns is not None, copy
                assert copy[reader.pid].max_ns < 0.3e9, copy[reader.pid]  # drained every 0.1 s
            else:
                assert not PER_PACKET & set(links), links
                assert (sample.softirq, sample.napi, sample.queues, sample.flows, sample.latency) == (
                    None,
                ) * 5
            outer_before, inner_before = inner_after, outer_after
    finally:
        source.close()
        sender.kill()
        reader.kill()
        sender.wait()
        reader.wait()
    assert tracepoints_linked() == before_links


def test_snapshot_marks_the_measured_intervals() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "netscope",
            "snapshot",
            "--json",
            "-i",
            "0.3",
            "-n",
            "4",
            "--detail-every",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["detail"] for o in objects] == [{"every": 2, "measured": m} for m in (True, False, True, False)]
    for obj in objects:
        assert all(cpu["hardirqs"] is not None for cpu in obj["cpus"])
        assert all((cpu["softirq_time_ns"] is None) is not obj["detail"]["measured"] for cpu in obj["cpus"])
        # A count is never null because a hook was detached: the kernel's own, every interval.
        for cpu in obj["cpus"]:
            assert cpu["softirqs"] is not None and cpu["processed"] is not None
            assert cpu["softirq_time_total_ns"] is not None and cpu["time_squeeze"] is not None
        assert obj["devices"] and all(
            d["rx_packets"] is not None and d["rx_bytes"] is not None for d in obj["devices"]
        )
        assert all(q["rx_packets"] is not None for q in obj["queues"] if not q["estimated"])
