"""`netscope export`: /metrics parsed with prometheus_client's own parser; drop and softirq counters
rise as the kernel's own counters do when the test causes known traffic and drops."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.netns import VethPair, send_udp, snmp
from harness.tmux import REPO, wait_for
from tests.kernel import truth

SUBNET = 69
PACKETS = 3000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netscope", "export", "--listen", f"127.0.0.1:{port}", "-i", "0.5"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving Prometheus metrics" in line, line
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        assert proc.wait(10) == 128 + 15  # SIGTERM: detached and out


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and labels.items() <= dict(ls).items())


def link_rx(pair: VethPair) -> int:
    """The receiving veth's RX packets as the kernel counts them (stats64, in its namespace)."""
    return truth.link_packets(pair.receiver_ns, pair.receiver_dev)[0]


def settled(url: str, after: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape whose totals include two whole intervals counted after `after` samples."""
    wait_for(lambda: total(scrape(url), "netscope_intervals_total") >= after + 2, 10, "two more intervals")
    return scrape(url)


def test_metrics_follow_the_kernels_counters(metrics_url: str, pair: VethPair) -> None:
    # Two intervals after the namespaces exist: netscope has read their devices once (a baseline).
    first = settled(metrics_url, total(scrape(metrics_url), "netscope_intervals_total"))
    assert total(first, "netscope_probe_up", probe="drops") == 1
    assert total(first, "netscope_probe_up", probe="flows") == 0  # no per-flow data by default
    before_noports = snmp(pair.receiver_ns)["NoPorts"]
    before_rx = sum(truth.softirqs()["NET_RX"].values())
    before_link = link_rx(pair)
    send_udp(pair, PACKETS)  # to a closed port: PACKETS NO_SOCKET drops, PACKETS packets received
    noports = truth.settled(lambda: snmp(pair.receiver_ns)["NoPorts"]) - before_noports
    link = truth.settled(lambda: link_rx(pair)) - before_link
    after = settled(metrics_url, total(first, "netscope_intervals_total") + 1)
    net_rx = sum(truth.softirqs()["NET_RX"].values()) - before_rx
    assert noports == PACKETS
    drops = total(after, "netscope_skb_drops_total", reason="NO_SOCKET") - total(
        first, "netscope_skb_drops_total", reason="NO_SOCKET"
    )
    assert noports <= drops <= noports + 10  # + whatever else on the box had no socket meanwhile
    ours_rx = total(after, "netscope_softirq_total", vec="NET_RX") - total(
        first, "netscope_softirq_total", vec="NET_RX"
    )
    assert ours_rx > 0 and abs(ours_rx - net_rx) <= 0.1 * net_rx + 100, (ours_rx, net_rx)
    # The device's own count (stats64), and its single queue's: what `ip -s link` counted.
    for metric in ("netscope_device_rx_packets_total", "netscope_queue_rx_packets_total"):
        rx = total(after, metric, device=pair.receiver_dev) - total(first, metric, device=pair.receiver_dev)
        assert PACKETS <= link <= rx <= link + 10, (metric, rx, link)
    # Copy latency and TCP are collected by default (sampled under the budget); NAPI polls and the
    # flow table are not (their sections are asked for by name).
    assert total(after, "netscope_probe_up", probe="latency") == 1
    assert total(after, "netscope_probe_up", probe="tcp") == 1
    assert total(after, "netscope_probe_up", probe="napi") == 0
    assert total(after, "netscope_copy_latency_seconds_count") == 0  # buckets only: no sum, no count
