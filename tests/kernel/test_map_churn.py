"""Bounded maps under churn, through a running `export` whose maps a test-only cap shrinks
(NETSCOPE_MAP_MAX): devices in namespaces that come and go fill the rings probe's queue table,
the loss is shown (netscope_bpf_map_full_total), and once those devices are gone and their keys
pruned the counting resumes: a new device's packets per queue add up to what the kernel counted."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack

from harness.netns import send_udp, veth_pair
from harness.tmux import REPO, wait_for
from tests.kernel.test_export import free_port, link_rx, scrape, total

SUBNET = 90  # 90..98
PAIRS = 8
# Room for the keys of one pair and the host (eth0, lo: the scrapes), not for eight pairs'.
MAP_MAX = 16
PACKETS = 300


def export(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "netscope", "export", "--listen", f"127.0.0.1:{port}"),
            *("-i", "0.5", "--sections", "rings"),
        ],
        cwd=REPO,
        env={**os.environ, "NETSCOPE_MAP_MAX": str(MAP_MAX)},
        stderr=subprocess.PIPE,
        text=True,
    )


def samples_after(url: str, n: int) -> Iterator[None]:
    start = total(scrape(url), "netscope_intervals_total")
    wait_for(lambda: total(scrape(url), "netscope_intervals_total") >= start + n, 30, f"{n} more intervals")
    yield


def test_a_full_map_is_shown_and_counting_resumes_once_dead_keys_are_pruned() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = export(port)
    try:
        assert proc.stderr is not None and "serving Prometheus metrics" in proc.stderr.readline()
        # Eight pairs at once, each with traffic both ways: more queue keys than the table holds.
        with ExitStack() as stack:
            pairs = [stack.enter_context(veth_pair(SUBNET + i, name=f"c{i}")) for i in range(PAIRS)]
            for pair in pairs:
                send_udp(pair, PACKETS, 9)
            wait_for(
                lambda: total(scrape(url), "netscope_bpf_map_full_total", probe="rings") > 0, 20, "a full map"
            )
        # All gone: their keys are pruned within a few intervals (namespaces are listed every 2 s).
        list(samples_after(url, 10))
        full = total(scrape(url), "netscope_bpf_map_full_total", probe="rings")
        with veth_pair(SUBNET + PAIRS, name="cn", queues=2) as pair:
            list(samples_after(url, 4))  # netscope has read the new namespaces' devices once
            before = link_rx(pair)
            send_udp(pair, PACKETS, 9)
            list(samples_after(url, 3))
            kernel = link_rx(pair)
            metrics = scrape(url)
        counted = total(metrics, "netscope_queue_rx_packets_total", device=pair.receiver_dev)
        # netscope counts from its first read of the device, the kernel from its creation: the
        # namespace's own IPv6 chatter may fall before netscope's first read, or before ours.
        assert kernel - before >= PACKETS and kernel - before <= counted <= kernel, (counted, before, kernel)
        assert total(metrics, "netscope_bpf_map_full_total", probe="rings") == full
    finally:
        proc.terminate()
        assert proc.wait(10) == 128 + 15
