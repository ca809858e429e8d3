"""Two rtnetlink dumps, decoded with struct: every link's name, queue counts, txqueuelen and stats64,
and every qdisc's kind, counters (`tc -s`) and the limit in force. pyroute2 decodes each attribute
of each message into nested dicts; on a box under a packet flood those two dumps, once an interval,
were the largest part of the TUI's own CPU time. These read only the attributes netscope uses.
Numbers are the uapi's (linux/rtnetlink.h, linux/if_link.h, linux/gen_stats.h, linux/pkt_sched.h):
a stable ABI.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NLMSG = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # struct ifinfomsg: family, type, index, flags, change
TCMSG = struct.Struct("=BxxxiIII")  # struct tcmsg: family, ifindex, handle, parent, info
RTATTR = struct.Struct("=HH")  # struct rtattr: len, type
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_GETQDISC = 18, 38
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME, IFLA_MASTER, IFLA_TXQLEN, IFLA_LINKINFO, IFLA_STATS64 = 3, 10, 13, 18, 23
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_INFO_KIND = 1
IFF_LOOPBACK = 0x8
TCA_KIND, TCA_OPTIONS, TCA_STATS2 = 1, 2, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE, TCA_STATS_PKT64 = 1, 3, 8  # in TCA_STATS2 (linux/gen_stats.h)
GNET_STATS_BASIC = struct.Struct("=QI")  # struct gnet_stats_basic: bytes, packets (u32)
GNET_STATS_QUEUE = struct.Struct("=5I")  # struct gnet_stats_queue: qlen, backlog, drops, requeues,
# overlimits
TC_H_ROOT = 0xFFFFFFFF
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
# struct rtnl_link_stats64, in order (a kernel may append fields: those are left out).
STATS64 = (
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
)
RECV_BYTES = 1 << 16


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    stats: dict[str, int]  # STATS64 fields; empty when the kernel sent none
    rx_queues: int  # IFLA_NUM_RX_QUEUES (0: not said)
    tx_queues: int
    master: int = 0  # IFLA_MASTER: the bridge or bond it is a port of (0: none)
    kind: str = ""  # IFLA_INFO_KIND ("veth", "bridge"...), "loopback"; "" for a plain NIC
    txqueuelen: int | None = None  # IFLA_TXQLEN (`ip link ... qlen`); None: not said


# Where a qdisc's options say its limit, and in what (linux/pkt_sched.h): a struct's u32 at an
# offset, or a u32 attribute nested in TCA_OPTIONS. pfifo_fast has no option: its ring is the
# device's txqueuelen (sized at creation and on each change of it).
FIFO_LIMIT = {"pfifo": "packets", "pfifo_head_drop": "packets", "bfifo": "bytes"}  # tc_fifo_qopt.limit
STRUCT_LIMIT = {"sfq": (8, "packets"), "netem": (4, "packets")}  # tc_sfq_qopt, tc_netem_qopt
NESTED_LIMIT = {  # kind -> (attribute, offset in it, unit)
    "tbf": (1, 24, "bytes"),  # TCA_TBF_PARMS: struct tc_tbf_qopt, after two tc_ratespec
    "fq_codel": (2, 0, "packets"),  # TCA_FQ_CODEL_LIMIT
    "codel": (2, 0, "packets"),  # TCA_CODEL_LIMIT
    "fq": (1, 0, "packets"),  # TCA_FQ_PLIMIT
    "fq_pie": (1, 0, "packets"),  # TCA_FQ_PIE_LIMIT
    "pie": (2, 0, "packets"),  # TCA_PIE_LIMIT
    "htb": (6, 0, "packets"),  # TCA_HTB_DIRECT_QLEN: its own queue (a class's is its leaf qdisc's)
}


@dataclass(frozen=True)
class Qdisc:
    """One qdisc as `tc -s qdisc` shows it: counters since it was created, gauges now."""

    ifindex: int
    handle: int
    parent: int  # TC_H_ROOT for a device's root
    kind: str  # "pfifo_fast", "tbf", "mq", "noqueue"...
    bytes: int
    packets: int
    drops: int
    requeues: int
    overlimits: int
    qlen: int  # packets queued now
    backlog: int  # bytes queued now
    limit: int | None  # from its options (None: none said, or a kind netscope does not read)
    limit_unit: str  # "packets" or "bytes" ("": no limit)


def _u32(buf: bytes, start: int, end: int, offset: int) -> int | None:
    return struct.unpack_from("=I", buf, start + offset)[0] if end - start >= offset + 4 else None


def qdisc_limit(kind: str, buf: bytes, start: int, end: int) -> tuple[int | None, str]:
    """(limit, unit) from a qdisc's TCA_OPTIONS payload."""
    if kind in FIFO_LIMIT:
        return _u32(buf, start, end, 0), FIFO_LIMIT[kind]
    if kind in STRUCT_LIMIT:
        offset, unit = STRUCT_LIMIT[kind]
        return _u32(buf, start, end, offset), unit
    if kind in NESTED_LIMIT:
        wanted, offset, unit = NESTED_LIMIT[kind]
        for inner, a, b in attributes(buf, start, end):
            if inner == wanted:
                return _u32(buf, a, b, offset), unit
    return None, ""


def attributes(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each rtattr from `start` to `end`."""
    while start + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(buf, start)
        if length < RTATTR.size:
            return
        yield kind & NLA_TYPE_MASK, start + RTATTR.size, start + length
        start += (length + 3) & ~3


class Rtnl:
    """A NETLINK_ROUTE socket, talking to the network namespace it was opened in."""

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def _dump(self, kind: int, body: bytes) -> Iterator[tuple[bytes, int, int]]:
        """Each message of a dump: (buffer, start of its body, its end)."""
        self._seq += 1
        self._sock.send(
            NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0) + body
        )
        while True:
            buf = self._sock.recv(RECV_BYTES)
            at = 0
            while at + NLMSG.size <= len(buf):
                length, msg_type, _flags, seq, _pid = NLMSG.unpack_from(buf, at)
                if length < NLMSG.size:
                    raise OSError("netlink: a truncated message")
                if seq == self._seq:
                    if msg_type == NLMSG_DONE:
                        return
                    if msg_type == NLMSG_ERROR:
                        (error,) = struct.unpack_from("=i", buf, at + NLMSG.size)
                        if error:
                            raise OSError(-error, f"netlink: {os.strerror(-error)}")
                    else:
                        yield buf, at + NLMSG.size, at + length
                at += (length + 3) & ~3

    def links(self) -> list[Link]:
        out = []
        for buf, start, end in self._dump(RTM_GETLINK, IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            _, _, index, flags, _ = IFINFOMSG.unpack_from(buf, start)
            name, stats, rxq, txq, master, txqlen = "", {}, 0, 0, 0, None
            link_kind = "loopback" if flags & IFF_LOOPBACK else ""
            for kind, a, b in attributes(buf, start + IFINFOMSG.size, end):
                if kind == IFLA_IFNAME:
                    name = buf[a:b].split(b"\0", 1)[0].decode(errors="replace")
                elif kind == IFLA_STATS64:
                    n = min(len(STATS64), (b - a) // 8)
                    stats = dict(zip(STATS64, struct.unpack_from(f"={n}Q", buf, a), strict=False))
                elif kind == IFLA_NUM_RX_QUEUES:
                    (rxq,) = struct.unpack_from("=I", buf, a)
                elif kind == IFLA_NUM_TX_QUEUES:
                    (txq,) = struct.unpack_from("=I", buf, a)
                elif kind == IFLA_MASTER:
                    (master,) = struct.unpack_from("=I", buf, a)
                elif kind == IFLA_TXQLEN:
                    (txqlen,) = struct.unpack_from("=I", buf, a)
                elif kind == IFLA_LINKINFO:
                    for inner, c, d in attributes(buf, a, b):
                        if inner == IFLA_INFO_KIND:
                            link_kind = buf[c:d].split(b"\0", 1)[0].decode(errors="replace")
            out.append(Link(index, name, stats, rxq, txq, master, link_kind, txqlen))
        return out

    def qdiscs(self) -> list[Qdisc]:
        """Every qdisc of every device (TCA_STATS2's basic and queue stats, 64-bit packets where
        the kernel sends them)."""
        out = []
        for buf, start, end in self._dump(RTM_GETQDISC, TCMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            _, ifindex, handle, parent, _ = TCMSG.unpack_from(buf, start)
            kind, options = "", (0, 0)
            nbytes = packets = packets64 = 0
            queue = (0, 0, 0, 0, 0)
            for attr, a, b in attributes(buf, start + TCMSG.size, end):
                if attr == TCA_KIND:
                    kind = buf[a:b].split(b"\0", 1)[0].decode(errors="replace")
                elif attr == TCA_OPTIONS:
                    options = (a, b)
                elif attr == TCA_STATS2:
                    for inner, c, d in attributes(buf, a, b):
                        if inner == TCA_STATS_BASIC and d - c >= GNET_STATS_BASIC.size:
                            nbytes, packets = GNET_STATS_BASIC.unpack_from(buf, c)
                        elif inner == TCA_STATS_PKT64 and d - c >= 8:
                            (packets64,) = struct.unpack_from("=Q", buf, c)
                        elif inner == TCA_STATS_QUEUE and d - c >= GNET_STATS_QUEUE.size:
                            queue = GNET_STATS_QUEUE.unpack_from(buf, c)
            qlen, backlog, drops, requeues, overlimits = queue
            limit, unit = qdisc_limit(kind, buf, *options)
            out.append(
                Qdisc(
                    ifindex,
                    handle,
                    parent,
                    kind,
                    nbytes,
                    max(packets, packets64),
                    drops,
                    requeues,
                    overlimits,
                    qlen,
                    backlog,
                    limit,
                    unit,
                )
            )
        return out
