"""The rtnetlink dumps decoded by hand: a link's name, queue counts and stats64 (a longer struct from
a newer kernel included), every qdisc's counters and limit, messages split over two reads, and a
netlink error raised as OSError."""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import replace

import pytest

from netscope.sources import netlink, rtnl


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + bytes(-len(raw) % 4)


def message(kind: int, seq: int, body: bytes) -> bytes:
    return rtnl.NLMSG.pack(rtnl.NLMSG.size + len(body), kind, 2, seq, 0) + body


class FakeSocket:
    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, _size: int) -> bytes:
        return self.replies.pop(0)


def fake(replies: list[bytes]) -> rtnl.Rtnl:
    r = rtnl.Rtnl.__new__(rtnl.Rtnl)
    r._sock = FakeSocket(replies)  # type: ignore[assignment]
    r._seq = 0
    return r


def test_links_name_queues_and_stats64() -> None:
    stats = list(range(100, 125))  # 25 u64: one more than the fields netscope names
    body = (
        rtnl.IFINFOMSG.pack(socket.AF_UNSPEC, 1, 7, 0, 0)
        + attr(rtnl.IFLA_IFNAME, b"veth0\0")
        + attr(99, b"\1\2\3")  # an attribute netscope does not read
        + attr(rtnl.IFLA_STATS64, struct.pack("=25Q", *stats))
        + attr(rtnl.IFLA_NUM_RX_QUEUES, struct.pack("=I", 2))
        + attr(rtnl.IFLA_NUM_TX_QUEUES, struct.pack("=I", 3))
        + attr(rtnl.IFLA_TXQLEN, struct.pack("=I", 500))
    )
    lo = rtnl.IFINFOMSG.pack(socket.AF_UNSPEC, 0, 1, 0, 0) + attr(rtnl.IFLA_IFNAME, b"lo\0")
    r = fake([message(16, 1, body), message(16, 1, lo) + message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))])
    veth, loopback = r.links()
    assert (veth.index, veth.name, veth.rx_queues, veth.tx_queues, veth.txqueuelen) == (7, "veth0", 2, 3, 500)
    assert veth.stats["rx_packets"] == 100 and veth.stats["rx_missed_errors"] == 115
    assert len(veth.stats) == len(rtnl.STATS64)
    assert (loopback.index, loopback.name, loopback.stats) == (1, "lo", {})


def qdisc_message(
    ifindex: int, handle: int, parent: int, kind: bytes, options: bytes, stats2: bytes
) -> bytes:
    body = rtnl.TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, parent, 0) + attr(rtnl.TCA_KIND, kind + b"\0")
    return message(36, 1, body + options + attr(rtnl.TCA_STATS2 | 0x8000, stats2))


def test_every_qdisc_with_its_counters_queue_and_limit_in_force() -> None:
    """A tbf root (its limit nested in TCA_OPTIONS after two tc_ratespec), a pfifo child (its limit
    the option itself), a pfifo_fast (no limit said: the device's txqueuelen is, later), 64-bit
    packets preferred to the basic stats' u32."""
    queue = struct.pack("=5I", 7, 700, 5, 2, 9)  # qlen, backlog, drops, requeues, overlimits
    basic = attr(rtnl.TCA_STATS_BASIC, struct.pack("=QI", 123_456, 1000) + bytes(4))
    stats2 = basic + attr(rtnl.TCA_STATS_QUEUE, queue)
    tbf_parms = bytes(24) + struct.pack("=3I", 3000, 1600, 1514)  # limit, buffer, mtu
    tbf_options = attr(rtnl.TCA_OPTIONS | 0x8000, attr(1, tbf_parms) + attr(4, struct.pack("=Q", 1)))
    done = message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))
    replies = [
        qdisc_message(4, 0x80010000, rtnl.TC_H_ROOT, b"tbf", tbf_options, stats2)
        + qdisc_message(
            4, 0x10000, 0x80010001, b"pfifo", attr(rtnl.TCA_OPTIONS, struct.pack("=I", 7)), stats2
        ),
        qdisc_message(5, 0, rtnl.TC_H_ROOT, b"pfifo_fast", attr(rtnl.TCA_OPTIONS, bytes(20)), stats2)
        + qdisc_message(
            6, 0, rtnl.TC_H_ROOT, b"noqueue", b"", attr(rtnl.TCA_STATS_PKT64, struct.pack("=Q", 2**40))
        )
        + done,
    ]
    tbf, pfifo, fast, noqueue = fake(replies).qdiscs()
    assert (tbf.ifindex, tbf.kind, tbf.parent, tbf.limit, tbf.limit_unit) == (
        4,
        "tbf",
        rtnl.TC_H_ROOT,
        3000,
        "bytes",
    )
    assert (tbf.packets, tbf.bytes, tbf.qlen, tbf.backlog) == (1000, 123_456, 7, 700)
    assert (tbf.drops, tbf.requeues, tbf.overlimits) == (5, 2, 9)
    assert (pfifo.handle, pfifo.parent, pfifo.limit, pfifo.limit_unit) == (0x10000, 0x80010001, 7, "packets")
    assert (fast.kind, fast.limit, fast.limit_unit) == ("pfifo_fast", None, "")
    assert (noqueue.packets, noqueue.limit, noqueue.drops) == (2**40, None, 0)


def test_a_netlink_error_is_raised() -> None:
    error = message(rtnl.NLMSG_ERROR, 1, struct.pack("=i", -errno.EPERM) + bytes(16))
    with pytest.raises(OSError) as raised:
        fake([error]).links()
    assert raised.value.errno == errno.EPERM


def test_a_reply_to_an_earlier_request_is_skipped() -> None:
    stale = message(16, 0, rtnl.IFINFOMSG.pack(0, 0, 9, 0, 0))
    r = fake([stale + message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))])
    assert r.links() == []


def test_a_qdiscs_interval_and_the_limit_in_force() -> None:
    """Counters per interval, gauges as read; pfifo_fast's limit is the device's txqueuelen; a qdisc
    replaced (another kind at the same handle, or its counters gone back) waits for the next read."""
    root = rtnl.Qdisc(4, 0, rtnl.TC_H_ROOT, "pfifo_fast", 1000, 10, 1, 0, 0, 0, 0, None, "")
    child = rtnl.Qdisc(4, 0x10000, 0x80010001, "pfifo", 500, 5, 0, 0, 0, 0, 0, 7, "packets")
    later = [
        replace(root, bytes=3000, packets=30, drops=4, qlen=3, backlog=300),
        replace(child, kind="bfifo", limit=3000, limit_unit="bytes"),
    ]
    (fast,) = netlink.qdisc_deltas((root, child), tuple(later), txqueuelen=1000)
    assert (fast.packets, fast.bytes, fast.drops, fast.qlen, fast.backlog) == (20, 2000, 3, 3, 300)
    assert (fast.limit, fast.limit_unit, fast.limit_knob, fast.root) == (1000, "packets", "txqueuelen", True)
    assert netlink.qdisc_deltas((later[0],), (root,), 1000) == ()  # replaced: counters went back
