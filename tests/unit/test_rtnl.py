"""The rtnetlink dumps decoded by hand: a link's name, queue counts and stats64 (a longer struct from
a newer kernel included), a root qdisc's drops (other qdiscs left out), messages split over two
reads, and a netlink error raised as OSError."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from netscope.sources import rtnl


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
    )
    lo = rtnl.IFINFOMSG.pack(socket.AF_UNSPEC, 0, 1, 0, 0) + attr(rtnl.IFLA_IFNAME, b"lo\0")
    r = fake([message(16, 1, body), message(16, 1, lo) + message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))])
    veth, loopback = r.links()
    assert (veth.index, veth.name, veth.rx_queues, veth.tx_queues) == (7, "veth0", 2, 3)
    assert veth.stats["rx_packets"] == 100 and veth.stats["rx_missed_errors"] == 115
    assert len(veth.stats) == len(rtnl.STATS64)
    assert (loopback.index, loopback.name, loopback.stats) == (1, "lo", {})


def test_root_qdisc_drops_and_queue_only() -> None:
    queue = struct.pack("=5I", 7, 700, 5, 0, 0)  # qlen, backlog, drops, requeues, overlimits
    stats2 = attr(rtnl.TCA_STATS2 | 0x8000, attr(1, bytes(16)) + attr(rtnl.TCA_STATS_QUEUE, queue))
    root = rtnl.TCMSG.pack(socket.AF_UNSPEC, 4, 0, rtnl.TC_H_ROOT, 0) + stats2
    child = rtnl.TCMSG.pack(socket.AF_UNSPEC, 4, 0x10000, 0x10001, 0) + stats2
    done = message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))
    assert fake([message(36, 1, root) + message(36, 1, child) + done]).root_qdisc_queue() == {4: (5, 7)}


def test_a_netlink_error_is_raised() -> None:
    error = message(rtnl.NLMSG_ERROR, 1, struct.pack("=i", -errno.EPERM) + bytes(16))
    with pytest.raises(OSError) as raised:
        fake([error]).links()
    assert raised.value.errno == errno.EPERM


def test_a_reply_to_an_earlier_request_is_skipped() -> None:
    stale = message(16, 0, rtnl.IFINFOMSG.pack(0, 0, 9, 0, 0))
    r = fake([stale + message(rtnl.NLMSG_DONE, 1, struct.pack("=i", 0))])
    assert r.links() == []
