"""Flows at scale: 100,000 concurrent UDP flows (bench/loadgen `flows`, 100 sockets x 1,000 closed
ports) through `netscope snapshot --json`, against the receiver's own Udp NoPorts counter and what
the senders sent. Timing targets (keys, cadence) are `make bench` rows, not tests."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.netns import VethPair, flood_flows, flood_result, snmp
from harness.tmux import bpftool_show
from netscope.probes.flows import COUNT, DROP_KEY, FLOW_KEY, FLOW_STAT
from netscope.sources.live import LiveSource

SUBNET = 89
SOCKETS, PORTS = 100, 1000  # 100,000 flows
HEAVY_PORT, HEAVY = 40000, 10  # one socket to 10 ports: 10 heavy flows


@contextmanager
def snapshots(*args: str) -> Iterator[queue.Queue[dict[str, Any]]]:
    """`netscope snapshot --json --interval 1` of the flows, one parsed line at a time; stopped after."""
    cmd = [sys.executable, "-m", "netscope", "snapshot", "--json", "--interval", "1", "--count", "600"]
    cmd += ["--sections", "flows", "--detail-every", "1", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        reader.join(5)
        assert proc.returncode in (0, 143, -15), err[-2000:]


def first_line(lines: queue.Queue[dict[str, Any]]) -> dict[str, Any]:
    """The first interval with the flows probe live (compiling takes a few seconds)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = lines.get(timeout=90)
        if line["flows"] is not None:
            return line
    raise AssertionError("the flows probe never came live")


def lines_until(lines: queue.Queue[dict[str, Any]], wall: float) -> list[dict[str, Any]]:
    """Every line up to the first whose interval ended after `wall` (UNIX time)."""
    got = []
    while not got or got[-1]["ts"] < wall:
        got.append(lines.get(timeout=30))
    return got


def softnet_dropped() -> int:
    """Packets the backlogs dropped before the stack, all CPUs (/proc/net/softnet_stat, 2nd column)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(row.split()[1], 16) for row in f)


def drops_of(line: dict[str, Any], reason: str = "NO_SOCKET") -> int:
    return sum(r["drops"].get(reason, 0) for r in line["flows"]) + line["flows_other"]["drops"].get(reason, 0)


def received(line: dict[str, Any]) -> int:
    return sum(r["rx_packets"] for r in line["flows"]) + line["flows_other"]["rx_packets"]


def test_rows_and_others_are_the_kernels_counts(pair: VethPair) -> None:
    """100k flows to closed ports at the sampling rate netscope chooses: the rows plus others hold
    every drop NoPorts counted, and the received estimate within 1%; an interval holds every flow."""
    seconds = 6.0
    with snapshots("--top", "100") as lines:
        first_line(lines)
        before = snmp(pair.receiver_ns)["NoPorts"]
        sent, took = flood_result(flood_flows(pair, seconds, SOCKETS, PORTS))
        got = lines_until(lines, time.time() + 1.5)
        no_ports = snmp(pair.receiver_ns)["NoPorts"] - before
    assert no_ports > 0.9 * sent, (no_ports, sent)  # (the flood reached the receiver's UDP)
    assert all(line["flows_not_held"] == {"rx_packets": 0, "drops": 0} for line in got)
    drops = sum(drops_of(line) for line in got)
    assert abs(drops - no_ports) <= 0.01 * no_ports, (drops, no_ports)
    rx = sum(received(line) for line in got)
    assert abs(rx - no_ports) <= 0.01 * no_ports, (rx, no_ports, [line["flows_sample_rate"] for line in got])
    # Each interval of the flood saw as many flows as it sent packets, up to all 100,000.
    per_interval = min(SOCKETS * PORTS, sent / took)
    flows = max(len(line["flows"]) + line["flows_other"]["flows"] for line in got)
    assert 0.9 * per_interval <= flows <= SOCKETS * PORTS + 50, (flows, per_interval)
    assert all(len(line["flows"]) <= 100 for line in got)


def link_dropped(pair: VethPair) -> int:
    """Packets the receiver's veth dropped (stats64), in its namespace."""
    links = json.loads(pair.in_ns(pair.receiver_ns, "ip", "-s", "-j", "link", "show"))
    link = next(li for li in links if li["ifname"] == pair.receiver_dev)
    return int(link["stats64"]["rx"]["dropped"])


def test_ten_heavy_flows_among_100k_light_are_the_top_ten(pair: VethPair) -> None:
    """10 heavy flows and 100k light ones, sampled 1 in 4: every interval's top 10 are the heavy
    flows, and over the run each heavy flow's packets are within 2% of what was sent to it (the
    estimate's error is about sqrt(4N / 3P): 0.5% here)."""
    seconds = 15.0
    with snapshots("--top", str(HEAVY), "--sample", "4") as lines:
        first_line(lines)
        dropped_before = softnet_dropped(), link_dropped(pair)
        light = flood_flows(pair, seconds, SOCKETS, PORTS, pps=40_000)
        started = time.time()
        heavy = flood_flows(pair, seconds, 1, HEAVY, base_port=HEAVY_PORT, pps=80_000)
        heavy_sent, _ = flood_result(heavy)
        flood_result(light)
        got = lines_until(lines, time.time() + 1.5)
        dropped = softnet_dropped() - dropped_before[0], link_dropped(pair) - dropped_before[1]
    assert dropped == (0, 0), f"packets dropped before the stack (softnet, veth): {dropped}"
    heavy_ports = set(range(HEAVY_PORT, HEAVY_PORT + HEAVY))
    counted = dict.fromkeys(heavy_ports, 0)
    for line in got:
        ports = {r["dport"] for r in line["flows"]}
        # (An interval the heavy flood began or ended in may hold only a few of its packets.)
        inside = started + 0.5 < line["ts"] - line["interval_s"] and line["ts"] < started + seconds - 0.5
        if inside:
            assert ports == heavy_ports, f"a light flow in the top {HEAVY}: {sorted(ports)}"
        for r in line["flows"]:
            # (At the edges a light flow, or a flow with no ports such as ICMP, may be in the top.)
            if r["dport"] in counted:
                counted[r["dport"]] += r["rx_packets"]
    each = heavy_sent / HEAVY  # the sender goes round the ten ports in turn
    off = {port: round(n / each - 1, 4) for port, n in counted.items() if abs(n - each) > 0.02 * each}
    assert not off, f"heavy flows off by more than 2% of {each:.0f}: {off}"


def maps_held_bytes() -> int:
    """The kernel's memlock of every BPF map this process holds: the map ids from its fds'
    fdinfo, their bytes_memlock from bpftool."""
    ids = set()
    for fd in os.listdir("/proc/self/fdinfo"):
        with contextlib.suppress(OSError), open(f"/proc/self/fdinfo/{fd}") as f:
            ids |= {int(line.split()[1]) for line in f if line.startswith("map_id:")}
    return sum(int(m["bytes_memlock"]) for m in bpftool_show("map") if m["id"] in ids)


def test_the_cost_line_holds_the_flow_tables_memory(pair: VethPair) -> None:
    """20,000 flows in one interval: the maps' memory netscope reports is what its maps hold once
    emptied, plus the flow tables' entries at their fullest (a key and a value each at least,
    and not over 1 kB a flow)."""
    flows = 20 * 1000
    source = LiveSource(sample_rate=1)  # every packet counted: every flow in the table
    try:
        for start in source.need(("flows",)):
            start()
        source.sample()  # the baseline
        flood_result(flood_flows(pair, 1.0, 20, 1000, pps=3 * flows))
        sample = source.sample()
        emptied = maps_held_bytes()
    finally:
        source.close()
    assert sample.flows is not None and sample.cost is not None
    seen = len(sample.flows.flows) + sample.flows.rest.flows
    assert flows <= seen <= flows + 50, seen  # (and the ICMP errors sent back, ND)
    entries = (FLOW_KEY.size + FLOW_STAT.size) + (DROP_KEY.size + COUNT.size)  # every flow dropped
    grown = sample.cost.map_bytes - emptied
    assert flows * entries <= grown <= flows * 1024, (grown, flows * entries)
