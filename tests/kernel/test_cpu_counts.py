"""netscope's CPU figures against the kernel's own counters, over the same window.

NET_RX softirq runs vs /proc/softirqs, hardirqs vs the numbered lines of /proc/interrupts, NAPI
packets vs /proc/net/softnet_stat `processed`, with UDP over veth between two namespaces.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from harness.netns import VethPair, disk_interrupts, flood_result, flood_udp, send_udp, udp_traffic
from netscope.model.cpu import build_cpu_view
from netscope.model.sample import Sample
from netscope.sources import kernel_counters
from netscope.sources.live import LiveSource
from tests.kernel import truth

SUBNET = 77
PACKETS = 20000


def proc_counters() -> tuple[dict[int, int], int, int]:
    """NET_RX runs per CPU, hardirqs on numbered lines (all CPUs), softnet processed (all CPUs)."""
    return truth.softirqs()["NET_RX"], truth.numbered_interrupts(), sum(p for p, _, _ in truth.softnet())


Counters = tuple[dict[int, int], int, int]


def measure(live: LiveSource, pair: VethPair) -> tuple[Sample, Counters, Counters, tuple[int, int]]:
    """The sample of an interval of traffic and disk interrupts, /proc read right after its start
    and right after its end, and the hardirqs /proc counted from just before the interval's first
    read to its end (the outer window: netscope's interval lies between the two)."""
    outer_start = proc_counters()
    live.sample()  # interval starts
    before = proc_counters()
    disk = threading.Thread(target=disk_interrupts, args=(300,))
    disk.start()
    send_udp(pair, PACKETS)
    disk.join()
    inner_end = proc_counters()
    sample = live.sample()  # interval ends
    after = proc_counters()
    return sample, before, after, (inner_end[1] - before[1], after[1] - outer_start[1])


def within(ours: int, theirs: int, tolerance: float = 0.05) -> bool:
    return abs(ours - theirs) <= tolerance * theirs


def test_net_rx_hardirq_napi_match_kernel_counters(live: LiveSource, pair: VethPair) -> None:
    sample, before, after, (inner_hard, outer_hard) = measure(live, pair)
    assert sample.softirq is not None and sample.hardirq is not None and sample.napi is not None
    rx_vec = sample.softirq_names.index("NET_RX")

    proc_rx = {cpu: after[0][cpu] - before[0][cpu] for cpu in after[0]}
    ours_rx = {s.cpu: s.runs[rx_vec] for s in sample.softirq}
    # Every packet crossed the veth: a NET_RX run at least every 64 packets (the backlog's weight).
    assert sum(proc_rx.values()) >= PACKETS // 64
    assert within(sum(ours_rx.values()), sum(proc_rx.values())), (ours_rx, proc_rx)
    for cpu, theirs in proc_rx.items():
        assert abs(ours_rx[cpu] - theirs) <= max(0.05 * theirs, 3), (cpu, ours_rx, proc_rx)

    # Interrupts keep coming while netscope samples: its interval lies between the window /proc
    # counted inside the two samples and the one around them (a few dozen apart on a busy box).
    ours_hard = sum(sum(c.per_cpu) for c in sample.hardirq)
    # Whatever device the machine's disk is (virtio-blk here): the fsync loop makes it interrupt.
    assert inner_hard >= 20, "too few hardirqs to compare: the fsync loop should cause disk interrupts"
    assert 0.95 * inner_hard <= ours_hard <= 1.05 * outer_hard, (ours_hard, inner_hard, outer_hard)

    proc_processed = after[2] - before[2]
    ours_packets = sum(sum(n.packets) for n in sample.napi)
    assert proc_processed >= PACKETS
    assert within(ours_packets, proc_processed), (ours_packets, proc_processed)
    assert sum(sum(n.polls) for n in sample.napi) > 0


def test_snapshot_json_counts_are_the_kernels_at_the_intervals_edges(pair: VethPair) -> None:
    """The headless command end to end, per-packet hooks on in every interval: each interval's
    NET_RX runs and NAPI packets are /proc's between its edges (ts - interval_s, ts), read by the
    test every 2 ms: within 5% of the least the readings inside the interval counted and of the
    most the readings just outside it counted."""
    command = ["snapshot", "--json", "--interval", "0.5", "--count", "4", "--detail-every", "1"]
    command += ["--sample", "1"]  # every packet: the sampled estimates have their own tests
    with truth.Recorder() as kernel:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netscope", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with udp_traffic(pair):
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 4
    for obj in objects:
        assert {p["name"]: p["state"] for p in obj["probes"]} == {
            "hardirq": "live",
            "softirq": "live",
            "napi": "live",
            "drops": "live",
            "rings": "live",
            "latency": "live",
            "send": "live",
            "stack": "live",
            "flows": "live",
            "tcp": "live",
            "qdisc": "live",
        }
        assert 0.4 < obj["interval_s"] < 0.8
        (runs_lo, runs_hi), (processed_lo, processed_hi) = kernel.between(
            obj["ts"] - obj["interval_s"], obj["ts"]
        )
        ours_rx = sum(cpu["softirqs"]["NET_RX"] for cpu in obj["cpus"])
        assert 0.95 * runs_lo - 5 <= ours_rx <= 1.05 * runs_hi + 5, (ours_rx, runs_lo, runs_hi)
        assert next(p["sample_rate"] for p in obj["probes"] if p["name"] == "napi") == 1
        ours_packets = sum(cpu["napi_packets"] for cpu in obj["cpus"])
        assert processed_lo >= 1000  # traffic ran through the whole command
        assert 0.95 * processed_lo <= ours_packets <= 1.05 * processed_hi, (
            ours_packets,
            processed_lo,
            processed_hi,
        )


def test_softirq_time_is_proc_stats_softirq_column(live: LiveSource, pair: VethPair) -> None:
    """sirq% per CPU comes from /proc/stat's softirq column: the test reads that column itself just
    before and just after each of netscope's reads (clock ticks), and netscope's figure lies
    between the window inside and the one around, a tick either way."""
    tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
    outer_start = truth.softirq_ticks()
    live.sample()
    inner_start = truth.softirq_ticks()
    sender = flood_udp(pair, 1.5, port=9)
    flood_result(sender)
    inner_end = truth.softirq_ticks()
    sample = live.sample()
    outer_end = truth.softirq_ticks()
    view = build_cpu_view(sample, live.info.cpus)
    busiest = 0.0
    for row in view.rows:
        assert row.cpu is not None and row.softirq_time_pct is not None
        ours_ns = row.softirq_time_pct / 100 * sample.interval_s * 1e9
        low = (inner_end[row.cpu] - inner_start[row.cpu] - 1) * tick_ns
        high = (outer_end[row.cpu] - outer_start[row.cpu] + 1) * tick_ns
        assert low <= ours_ns <= high, (row.cpu, ours_ns / tick_ns, low / tick_ns, high / tick_ns)
        busiest = max(busiest, row.softirq_time_pct)
    assert busiest >= 10, "the flood should keep a CPU in softirqs a good part of the time"


def test_net_rx_each_interval_is_proc_softirqs_read_beside_netscopes_read(
    live: LiveSource, pair: VethPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a flood, each interval's NET_RX runs are /proc/softirqs' between the moments netscope
    read it: the test reads /proc/softirqs itself (its own parser) right after each of netscope's
    reads, and the interval's count is within 2% of the test's (the issue's bound; the two reads
    are microseconds apart)."""
    beside: list[int] = []
    netscopes_read = kernel_counters.procfs.read_softirqs

    def read_then_look() -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
        out = netscopes_read()
        beside.append(sum(truth.softirqs()["NET_RX"].values()))
        return out

    monkeypatch.setattr(kernel_counters.procfs, "read_softirqs", read_then_look)
    flood = flood_udp(pair, 4.0)
    try:
        time.sleep(0.3)  # (the flood under way)
        live.sample()
        samples = []
        for _ in range(3):
            time.sleep(0.8)
            samples.append(live.sample())
    finally:
        flood_result(flood)
    assert len(beside) == 4
    names = samples[0].softirq_names
    for sample, (before, after) in zip(samples, itertools.pairwise(beside), strict=True):
        ours = sum(c.runs[names.index("NET_RX")] for c in sample.proc_softirqs)
        theirs = after - before
        assert theirs > 1000, theirs  # (the flood ran through the interval)
        assert abs(ours - theirs) <= 0.02 * theirs, (ours, theirs)
