"""TCP connections against the kernel's own counters: under a bulk transfer that loses 1 segment in 20
at the receiver (an nft rule, `numgen random mod 20`), the sender's retransmits per connection add
up to the change of Tcp RetransSegs in its namespace (read by the test) within 2%, and
tcp_retransmits fires; a reader that stops reading lets its window fall to 0: the zero-window
segments at both ends, TcpExt's own count of zero windows advertised (read by the test), and
rcv_window_limited naming tcp_rmem; a reader that closes with data unread sends a RST, counted at
its end as Tcp OutRsts counts it, and at the sender's as received."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.netns import TCP_READER, TCP_SENDER, VethPair, in_ns, netns_inode, run, snmp
from netscope.model.findings import find
from netscope.model.sample import Sample, TcpConn
from netscope.sources.live import LiveSource

SUBNET = 61
BULK_PORT, STALLED_PORT, RESET_PORT = 6301, 6302, 6303
BULK_BYTES = 16_000_000
LOSS = """table inet netscope_loss {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport %d numgen random mod 20 == 0 counter drop
    }
}
"""
# Accepts, lets the data it was sent wait unread, and closes: a close with unread data is a RST.
RESETTER = r"""
import socket, sys, time
srv = socket.socket()
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
time.sleep(0.5)
conn.close()
"""
CLIENT = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.sendall(b"x" * 1000)
time.sleep(1.0)
"""
TCP_SOURCE = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.sendall(b"z" * int(sys.argv[3]))
c.close()
"""


def netstat(ns: str) -> dict[str, int]:
    """The TcpExt section of /proc/net/netstat in namespace `ns`."""
    lines = [line.split() for line in run("ip", "netns", "exec", ns, "cat", "/proc/net/netstat").splitlines()]
    head, values = [row for row in lines if row[0] == "TcpExt:"]
    return {k: int(v) for k, v in zip(head[1:], values[1:], strict=True)}


@contextmanager
def tcp_source() -> Iterator[LiveSource]:
    source = LiveSource()
    try:
        for start in source.need(("tcp",)):
            start()
        yield source
    finally:
        source.close()


def ends(samples: list[Sample], netns: int, port: int, local: bool) -> list[TcpConn]:
    """The connection ends of the samples in namespace `netns` with `port` as their local port
    (`local`) or their peer's."""
    return [
        c
        for s in samples
        if s.tcp is not None
        for c in s.tcp.conns
        if c.netns == netns and (c.lport if local else c.rport) == port
    ]


def test_retransmits_per_connection_are_the_kernels_retranssegs(pair: VethPair) -> None:
    sink = in_ns(pair.receiver_ns, TCP_READER, str(BULK_PORT), "0")
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    run("ip", "netns", "exec", pair.receiver_ns, "nft", "-f", "-", input_text=LOSS % BULK_PORT)
    try:
        with tcp_source() as source:
            source.sample()
            before = snmp(pair.sender_ns, "Tcp")["RetransSegs"]
            in_before = snmp(pair.receiver_ns, "Tcp")["InSegs"]
            sender = (sys.executable, "-c", TCP_SOURCE, pair.receiver_ip, str(BULK_PORT), str(BULK_BYTES))
            pair.in_ns(pair.sender_ns, *sender)
            got = int(sink.communicate(timeout=60)[0])
            time.sleep(0.5)  # the last retransmits and ACKs
            after = snmp(pair.sender_ns, "Tcp")["RetransSegs"]
            in_segs = snmp(pair.receiver_ns, "Tcp")["InSegs"] - in_before
            samples = [source.sample()]
    finally:
        sink.kill()
        run("ip", "netns", "exec", pair.receiver_ns, "nft", "delete", "table", "inet", "netscope_loss")
    assert got == BULK_BYTES
    retrans = after - before
    sending = ends(samples, netns_inode(pair.sender_ns), BULK_PORT, local=False)
    counted = sum(c.retransmits for c in sending)
    print(f"Tcp RetransSegs {retrans}, netscope {counted}")
    assert retrans > 100, retrans
    assert abs(counted - retrans) <= 0.02 * retrans, (counted, retrans)
    receiving = ends(samples, netns_inode(pair.receiver_ns), BULK_PORT, local=True)
    # tcp:tcp_probe runs once per skb the receiver takes (GRO merges segments), sampled: at most
    # what Tcp InSegs counts (every segment).
    assert receiving and 0 < sum(c.segments for c in receiving) <= in_segs, in_segs
    assert any(c.srtt_us for c in sending)  # the sender timed its ACKs
    found = {f.id.split(":")[0] for f in find(source.info, samples[0])}
    assert "tcp_retransmits" in found, found


def test_a_reader_that_stops_reading_closes_its_window(pair: VethPair) -> None:
    reader = in_ns(pair.receiver_ns, TCP_READER, str(STALLED_PORT), "60")  # reads after a minute
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    zero_before = netstat(pair.receiver_ns)["TCPToZeroWindowAdv"]
    sender = in_ns(pair.sender_ns, TCP_SENDER, pair.receiver_ip, str(STALLED_PORT), "6")
    samples = []
    try:
        with tcp_source() as source:
            source.sample()
            for _ in range(5):
                time.sleep(1.0)
                samples.append(source.sample())
            zero_after = netstat(pair.receiver_ns)["TCPToZeroWindowAdv"]
    finally:
        sender.kill()
        reader.kill()
    assert zero_after > zero_before  # the kernel advertised a zero window
    receiving = ends(samples, netns_inode(pair.receiver_ns), STALLED_PORT, local=True)
    sending = ends(samples, netns_inode(pair.sender_ns), STALLED_PORT, local=False)
    print(
        f"TCPToZeroWindowAdv +{zero_after - zero_before}; segments at a zero window: receiver "
        f"{sum(c.zero_rcv_wnd for c in receiving)}, sender {sum(c.zero_snd_wnd for c in sending)}"
    )
    assert sum(c.zero_rcv_wnd for c in receiving) > 0 and sum(c.zero_snd_wnd for c in sending) > 0
    assert any(c.rcv_wnd == 0 for c in receiving)
    limited = [f for s in samples for f in find(source.info, s) if f.id.startswith("rcv_window_limited:")]
    assert limited and limited[-1].current.startswith("tcp_rmem "), limited
    assert f":{STALLED_PORT}" in limited[-1].summary


def test_a_reset_is_counted_at_both_ends(pair: VethPair) -> None:
    server = in_ns(pair.receiver_ns, RESETTER, str(RESET_PORT))
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    with tcp_source() as source:
        source.sample()
        out_rsts = snmp(pair.receiver_ns, "Tcp")["OutRsts"]
        pair.in_ns(pair.sender_ns, sys.executable, "-c", CLIENT, pair.receiver_ip, str(RESET_PORT))
        sent = snmp(pair.receiver_ns, "Tcp")["OutRsts"] - out_rsts
        samples = [source.sample()]
    server.wait()
    closing = ends(samples, netns_inode(pair.receiver_ns), RESET_PORT, local=True)
    reset = ends(samples, netns_inode(pair.sender_ns), RESET_PORT, local=False)
    assert sent == 1 and sum(c.resets_sent for c in closing) == sent
    assert sum(c.resets_received for c in reset) == 1
