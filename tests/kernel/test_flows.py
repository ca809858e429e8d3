"""Flows parsed in BPF against traffic the test sends, in namespaces it creates."""

from __future__ import annotations

import sys

from harness.netns import TCP_READER, VethPair, in_ns, netns_inode
from netscope.model.filter import parse_filter
from netscope.model.flows import build_flows_view
from netscope.probes.base import start_probes
from netscope.probes.flows import EVENTS_PER_WINDOW, FlowsProbe
from netscope.probes.headers import find_headers
from netscope.sources import procfs
from netscope.sources.live import LiveSource
from tests.kernel import truth

SUBNET = 74

FIXED_PORT_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
for _ in range(int(sys.argv[4])):
    s.sendto(b"x" * 32, (sys.argv[1], int(sys.argv[3])))
"""

TCP_SOURCE = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.sendall(b"z" * int(sys.argv[3]))
c.close()
"""


def settled(pair: VethPair) -> None:
    """Until the receiving veth's counters stop moving: the softirqs are done with what was sent."""
    truth.settled(lambda: truth.link_packets(pair.receiver_ns, pair.receiver_dev))


def send_from(pair: VethPair, sport: int, dport: int, count: int) -> None:
    args = (pair.receiver_ip, str(sport), str(dport), str(count))
    pair.in_ns(pair.sender_ns, sys.executable, "-c", FIXED_PORT_SENDER, *args)


def test_udp_flow_counts_and_drops_exactly(live: LiveSource, pair: VethPair) -> None:
    live.sample()
    send_from(pair, 40001, 9, 2500)
    settled(pair)
    sample = live.sample()
    view = build_flows_view(sample, live.info)
    assert view is not None
    ours = [
        r
        for r in view.rows
        if r.flow.netns == netns_inode(pair.receiver_ns)
        and (r.flow.saddr, r.flow.sport, r.flow.dport) == (pair.sender_ip, 40001, 9)
    ]
    assert len(ours) == 1, [r.label for r in view.rows]
    flow = ours[0].flow
    assert (flow.proto, flow.daddr, flow.rx_packets) == (17, pair.receiver_ip, 2500)
    assert dict(flow.drops) == {"NO_SOCKET": 2500}
    assert ours[0].netns == pair.receiver_ns


def test_tcp_flow_copied_bytes_and_reader(live: LiveSource, pair: VethPair) -> None:
    size = 3_000_000
    sink = in_ns(pair.receiver_ns, TCP_READER, "6201", "0")  # reads as soon as data arrives
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    live.sample()
    pair.in_ns(pair.sender_ns, sys.executable, "-c", TCP_SOURCE, pair.receiver_ip, "6201", str(size))
    got = int(sink.communicate(timeout=30)[0])
    settled(pair)
    view = build_flows_view(live.sample(), live.info)
    assert view is not None and got == size
    inbound = [
        r
        for r in view.rows
        if r.flow.proto == 6 and r.flow.dport == 6201 and r.flow.daddr == pair.receiver_ip
    ]
    assert len(inbound) == 1
    row = inbound[0]
    assert row.copied_bytes == size
    assert row.pid == sink.pid
    # The payload plus the TCP/IP headers: of each skb (GSO skbs cross veth whole), at most 120
    # bytes a segment.
    assert size < row.flow.rx_bytes <= size + 120 * row.flow.rx_packets, (
        row.flow.rx_bytes,
        row.flow.rx_packets,
    )


def test_filter_counts_only_matching_flows(pair: VethPair) -> None:
    probe = FlowsProbe(
        procfs.read_online_cpus(), parse_filter(f"udp and dst port 9 and src host {pair.sender_ip}")
    )
    try:
        start_probes((probe,), find_headers())
        probe.poll()  # the interval starts now
        send_from(pair, 40002, 9, 300)
        send_from(pair, 40003, 10, 200)
        settled(pair)
        sample = probe.poll()
    finally:
        probe.close()
    assert sample is not None
    assert [(f.sport, f.dport, f.rx_packets) for f in sample.flows] == [(40002, 9, 300)]
    # The other flow's packets were left out in the kernel, and the closed ports' ICMP errors back
    # to the sender (at most one per datagram), and a little neighbour traffic.
    assert 200 <= sample.filtered <= 200 + 500 + 20, sample.filtered
    assert sample.filter.startswith("udp and dst port 9")


def test_a_new_filter_recompiles_every_filtered_program(live: LiveSource, pair: VethPair) -> None:
    """What `/` does in the TUI: flows, drops, rings and latency are recompiled with the filter, so
    the other flow's packets are counted nowhere."""
    live.set_flow_filter(parse_filter(f"udp and dst port 9 and src host {pair.sender_ip}"))
    try:
        assert {p.name: p.state.value for p in live.statuses()} == dict.fromkeys(
            (
                "hardirq",
                "softirq",
                "napi",
                "drops",
                "rings",
                "latency",
                "send",
                "stack",
                "flows",
                "tcp",
                "qdisc",
            ),
            "live",
        )
        live.sample()
        live.sample()  # the new program's first interval is its baseline
        send_from(pair, 40004, 9, 150)
        send_from(pair, 40005, 10, 150)
        settled(pair)
        sample = live.sample()
    finally:
        live.set_flow_filter(None)
    assert sample.flows is not None
    assert [(f.sport, f.dport, f.rx_packets) for f in sample.flows.flows] == [(40004, 9, 150)]
    assert sample.drops is not None and sample.queues is not None
    receiver = netns_inode(pair.receiver_ns)
    no_socket = [sum(b.per_cpu) for b in sample.drops.buckets if b.netns == receiver and b.reason == 3]
    assert sum(no_socket) == 150  # port 10's 150 NO_SOCKET drops were left out in the kernel
    rx = sum(q.packets for q in sample.queues if q.netns == receiver and not q.tx)
    assert rx == 150


def test_watched_flow_streams_its_packets_one_by_one(pair: VethPair) -> None:
    """The flow screen's stream: every packet of the watched flow (here all dropped: NO_SOCKET),
    none of the others; past the stream's budget (EVENTS_PER_WINDOW a window) the rest of its
    packets are counted as skipped, each one."""
    probe = FlowsProbe(procfs.read_online_cpus())
    try:
        start_probes((probe,), find_headers())
        probe.watch((netns_inode(pair.receiver_ns), 17, pair.sender_ip, 40006, pair.receiver_ip, 9))
        probe.poll()
        send_from(pair, 40006, 9, 120)
        send_from(pair, 40007, 9, 80)
        settled(pair)
        sample = probe.poll()
        send_from(pair, 40006, 9, 3000)  # 6,000 events (each received, then dropped) at once
        settled(pair)
        burst = probe.poll()
    finally:
        probe.close()
    assert burst is not None and burst.events_skipped > 0
    assert len(burst.events) + burst.events_skipped + burst.events_lost == 6000
    assert len(burst.events) <= 2 * EVENTS_PER_WINDOW  # (the burst may span two windows)
    assert sample is not None and sample.events_lost == 0
    received = [e for e in sample.events if not e.reason]
    dropped = [e for e in sample.events if e.reason]
    assert len(received) == 120 and len(dropped) == 120
    assert {e.reason for e in dropped} == {"NO_SOCKET"} and all("udp" in e.symbol for e in dropped)
    assert [e.ts for e in sample.events] == sorted(e.ts for e in sample.events)
