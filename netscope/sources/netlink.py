"""Devices' own counters in every network namespace: links, stats64 and root qdisc drops
(rtnetlink, rtnl.py), ring sizes (ethtool netlink, pyroute2), and BQL from sysfs.

Why setns: devices live in pod namespaces too; a netlink socket opened while this thread is in a
namespace keeps talking to it. Only this thread moves, and it always moves back.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscope.model.sample import QDISC_COUNTERS, DeviceStats, QdiscStats
from netscope.sources.rtnl import TC_H_ROOT, Qdisc, Rtnl

CLONE_NEWNET = 0x40000000
RING_TTL_S = 10.0  # ring sizes and queues' NAPI ids change rarely: asked again after this long
SYS_NET = Path("/sys/class/net")
_libc = ctypes.CDLL(None, use_errno=True)
Rings = tuple[int | None, int | None, int | None, int | None]  # rx, rx max, tx, tx max; None: n/a


@contextlib.contextmanager
def in_netns(path: str | None) -> Iterator[None]:
    """Run the block with this thread in the network namespace at `path` (None: stay)."""
    if path is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({path}): {os.strerror(err)}")
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # cannot happen for our own namespace
                    raise OSError(ctypes.get_errno(), "could not return to netscope's own namespace")
        finally:
            os.close(target)
    finally:
        os.close(own)


@dataclass(frozen=True)
class LinkTotals:
    """Cumulative counters of one device, as netlink reports them."""

    netns: int
    ifindex: int
    ifname: str
    driver: str
    rings: Rings
    counters: dict[str, int] = field(hash=False)  # stats64 fields and qdisc_drops
    bql: tuple[tuple[int, int, int], ...]
    queue_napi: tuple[tuple[str, int, int], ...] = ()
    qstats: dict[tuple[str, int, str], int] = field(default_factory=dict, hash=False)
    queues: tuple[int, int] = (0, 0)  # RX and TX queues (IFLA_NUM_RX_QUEUES / _TX_); 0: unknown
    master: int = 0  # the bridge or bond it is a port of (0: none)
    kind: str = ""  # "veth", "loopback"...; "" for a plain NIC
    gro: bool | None = None  # GRO on (None: the driver does not say)
    qdisc_qlen: int = 0  # packets in its root qdisc at the read (a gauge)
    qdiscs: tuple[Qdisc, ...] = ()  # its qdiscs, the root first
    txqueuelen: int | None = None


STATS = (
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_missed_errors",
    "rx_over_errors",
    "rx_fifo_errors",
    "rx_dropped",
    "tx_dropped",
)


def _ring_sizes(ethtool: Any, ifindex: int) -> Rings:
    try:
        msg = ethtool.get_rings(ifindex=ifindex)[0]
    except Exception:  # EOPNOTSUPP: the driver has no rings (veth, lo)
        return (None, None, None, None)
    return (
        msg.get("ETHTOOL_A_RINGS_RX"),
        msg.get("ETHTOOL_A_RINGS_RX_MAX"),
        msg.get("ETHTOOL_A_RINGS_TX"),
        msg.get("ETHTOOL_A_RINGS_TX_MAX"),
    )


SIOCETHTOOL = 0x8946
ETHTOOL_GCHANNELS = 0x3C
_CHANNELS = struct.Struct("9I")  # struct ethtool_channels: cmd, 4 maxima, rx, tx, other, combined


def _queues(ifname: str) -> tuple[int, int] | None:
    """RX and TX queues in use, as `ethtool -l` shows them (rx or combined channels), in the
    namespace this thread is in; None when the driver does not say (its allocated queues stand)."""
    buf = array.array("B", _CHANNELS.pack(ETHTOOL_GCHANNELS, *(0,) * 8))
    request = struct.pack("16sP", ifname.encode()[:15], buf.buffer_info()[0])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCETHTOOL, request)
    except OSError:  # EOPNOTSUPP: no channels (lo)
        return None
    *_, rx, tx, _other, combined = _CHANNELS.unpack(buf)
    return (rx + combined, tx + combined) if rx + combined and tx + combined else None


ETHTOOL_GGRO = 0x2B
_VALUE = struct.Struct("2I")  # struct ethtool_value: cmd, data


def _gro(ifname: str) -> bool | None:
    """Whether GRO is on (`ethtool -k`: generic-receive-offload), in the namespace this thread is
    in; None when the driver does not say."""
    buf = array.array("B", _VALUE.pack(ETHTOOL_GGRO, 0))
    request = struct.pack("16sP", ifname.encode()[:15], buf.buffer_info()[0])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCETHTOOL, request)
    except OSError:
        return None
    return bool(_VALUE.unpack(buf)[1])


# Devices that may keep BQL (a NIC's driver: no rtnetlink kind; ifb). The software devices of
# containers (veth, bridge, vxlan, macvlan...) transmit locklessly and have none in sysfs, so a
# namespace holding only those is never entered to look.
BQL_KINDS = frozenset({"", "ifb"})


def bql(ifname: str, sys_net: Path = SYS_NET) -> tuple[tuple[int, int, int], ...]:
    """(tx queue, inflight, limit) from sysfs (`sys_net`: /sys/class/net as the device's namespace
    sees it)."""
    out = []
    for q in sorted((sys_net / ifname / "queues").glob("tx-*")):
        try:
            inflight = int((q / "byte_queue_limits" / "inflight").read_text())
            limit = int((q / "byte_queue_limits" / "limit").read_text())
        except (OSError, ValueError):
            continue
        out.append((int(q.name[3:]), inflight, limit))
    return tuple(out)


def _driver(ifname: str) -> str:
    link = SYS_NET / ifname / "device" / "driver"
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return ""


@dataclass
class _Sockets:
    """The netlink sockets of one namespace, opened there and kept: a socket keeps talking to the
    namespace it was opened in, and opening one (and resolving the netdev family) each interval
    cost more than the dumps themselves. It also keeps that namespace alive: closed as soon as the
    namespace is no longer asked for."""

    rtnl: Rtnl
    netdev: Any

    def close(self) -> None:
        self.rtnl.close()
        self.netdev.close()


class LinkReader:
    """Reads every device of the given namespaces; caches ring sizes, queues and GRO for RING_TTL_S."""

    def __init__(self, own_netns: int) -> None:
        self.own_netns = own_netns
        # (netns, ifindex) -> when read, its rings, its RX and TX queues, GRO on (None: not said)
        self._rings: dict[tuple[int, int], tuple[float, Rings, tuple[int, int], bool | None]] = {}
        self._napi_ids: dict[int, tuple[float, dict[int, tuple[tuple[str, int, int], ...]]]] = {}
        self._no_qstats: dict[int, float] = {}  # namespace -> since when its drivers keep no qstats
        self._sockets: dict[int, _Sockets] = {}  # namespace -> its sockets
        self._lock = threading.Lock()  # the sampler and `describe` may read at once

    def read(
        self,
        namespaces: dict[int, str | None],
        around: Callable[[int, list[LinkTotals] | None], None] | None = None,
    ) -> list[LinkTotals]:
        """`namespaces`: inode -> path to enter (None for netscope's own). A namespace that vanished
        or cannot be entered is skipped. `around(inode, devices)` runs in each namespace right
        before (devices None) and right after its devices are read (its snmp counters: how far they
        moved meanwhile is how far apart the two sides of a stage may have been read)."""
        out: list[LinkTotals] = []
        with self._lock:
            for inode, path in namespaces.items():
                try:
                    with in_netns(path):
                        if around is not None:
                            around(inode, None)
                        here = self._read_here(inode)
                        out.extend(here)
                        if around is not None:
                            around(inode, here)
                except OSError:
                    self._forget(inode)
                    continue
        return out

    def forget_except(self, namespaces: Collection[int]) -> None:
        """Close the sockets of the namespaces not in `namespaces` (netscope's own stays open): a
        socket holds its namespace alive."""
        with self._lock:
            for inode in [n for n in self._sockets if n not in namespaces and n != self.own_netns]:
                self._forget(inode)

    def close(self) -> None:
        with self._lock:
            for inode in list(self._sockets):
                self._forget(inode)

    def _forget(self, inode: int) -> None:
        sockets = self._sockets.pop(inode, None)
        if sockets is not None:
            sockets.close()

    def _sockets_here(self, inode: int) -> _Sockets:
        sockets = self._sockets.get(inode)
        if sockets is None:
            # pyroute2 (the netdev family) takes 0.2 s to import: not before the first frame
            from netscope.sources.netdev_genl import NetdevFamily

            sockets = self._sockets[inode] = _Sockets(Rtnl(), NetdevFamily())
        return sockets

    def _read_here(self, inode: int) -> list[LinkTotals]:
        """Every device of the namespace this thread is in."""
        from pyroute2.netlink.generic.ethtool import NlEthtool

        sockets = self._sockets_here(inode)
        try:
            links = sockets.rtnl.links()
            qdiscs: dict[int, list[Qdisc]] = {}
            for q in sorted(sockets.rtnl.qdiscs(), key=lambda q: q.parent != TC_H_ROOT):
                qdiscs.setdefault(q.ifindex, []).append(q)
        except Exception as e:  # a socket gone bad: `read` forgets it, opened again next time
            raise OSError(f"netlink: {e}") from e
        napi_taken = self._napi_ids.get(inode)
        if napi_taken is None or time.monotonic() - napi_taken[0] > RING_TTL_S:  # they change rarely
            napi_taken = self._napi_ids[inode] = (time.monotonic(), sockets.netdev.queue_napi_ids())
        napi_ids = napi_taken[1]
        # Per-queue stats: every interval where a driver keeps them; a namespace whose drivers keep
        # none (veth, lo) is asked again only now and then.
        none_since = self._no_qstats.get(inode)
        fresh = not none_since or time.monotonic() - none_since >= RING_TTL_S
        qstats = sockets.netdev.queue_stats() if fresh else {}
        if not qstats and not none_since:
            self._no_qstats[inode] = time.monotonic()
        elif qstats:
            self._no_qstats.pop(inode, None)
        own = inode == self.own_netns
        ethtool = None
        out = []
        try:
            for link in links:
                ifindex, name = link.index, link.name
                cached = self._rings.get((inode, ifindex))
                if cached is None or time.monotonic() - cached[0] > RING_TTL_S:
                    ethtool = ethtool or NlEthtool()
                    fallback = (link.rx_queues, link.tx_queues)
                    cached = (
                        time.monotonic(),
                        _ring_sizes(ethtool, ifindex),
                        _queues(name) or fallback,
                        _gro(name),
                    )
                    self._rings[(inode, ifindex)] = cached
                counters = {k: link.stats.get(k, 0) for k in STATS}
                own_qdiscs = qdiscs.get(ifindex, [])
                root = own_qdiscs[0] if own_qdiscs and own_qdiscs[0].parent == TC_H_ROOT else None
                counters["qdisc_drops"] = root.drops if root else 0
                out.append(
                    LinkTotals(
                        netns=inode,
                        ifindex=ifindex,
                        ifname=name,
                        driver=_driver(name) if own else "",
                        rings=cached[1],
                        counters=counters,
                        bql=bql(name) if own else (),
                        queue_napi=napi_ids.get(ifindex, ()),
                        qstats={
                            (kind, queue, counter): value
                            for (kind, queue), values in qstats.get(ifindex, {}).items()
                            for counter, value in values.items()
                        },
                        queues=cached[2],
                        master=link.master,
                        kind=link.kind,
                        gro=cached[3],
                        qdisc_qlen=root.qlen if root else 0,
                        qdiscs=tuple(own_qdiscs),
                        txqueuelen=link.txqueuelen,
                    )
                )
        finally:
            if ethtool is not None:
                ethtool.close()
        return out


def link_deltas(
    previous: dict[tuple[int, int], LinkTotals], current: list[LinkTotals]
) -> tuple[DeviceStats, ...]:
    """Per-interval device stats. A device seen for the first time (or an ifindex reused by another
    name) has no interval yet: it appears from the next one, rather than with made-up zeros."""
    out = []
    for link in current:
        before = previous.get((link.netns, link.ifindex))
        if before is None or before.ifname != link.ifname:
            continue
        base = before.counters

        def d(key: str, base: dict[str, int] = base, link: LinkTotals = link) -> int:
            return max(0, link.counters[key] - base[key])

        rx, rx_max, tx, tx_max = link.rings
        out.append(
            DeviceStats(
                netns=link.netns,
                ifindex=link.ifindex,
                ifname=link.ifname,
                driver=link.driver,
                rx_ring=rx,
                rx_ring_max=rx_max,
                tx_ring=tx,
                tx_ring_max=tx_max,
                rx_packets=d("rx_packets"),
                tx_packets=d("tx_packets"),
                rx_bytes=d("rx_bytes"),
                tx_bytes=d("tx_bytes"),
                rx_queues=link.queues[0],
                tx_queues=link.queues[1],
                rx_missed=d("rx_missed_errors"),
                rx_over=d("rx_over_errors"),
                rx_fifo=d("rx_fifo_errors"),
                rx_dropped=d("rx_dropped"),
                tx_dropped=d("tx_dropped"),
                qdisc_drops=d("qdisc_drops"),
                qdisc_qlen=link.qdisc_qlen,
                bql=link.bql,
                master=link.master,
                kind=link.kind,
                gro=link.gro,
                queue_napi=link.queue_napi,
                qstats=tuple(
                    (kind, queue, counter, max(0, value - before.qstats.get((kind, queue, counter), value)))
                    for (kind, queue, counter), value in sorted(link.qstats.items())
                ),
                qdiscs=qdisc_deltas(before.qdiscs, link.qdiscs, link.txqueuelen),
                txqueuelen=link.txqueuelen,
            )
        )
    return tuple(out)


def qdisc_deltas(
    before: tuple[Qdisc, ...], now: tuple[Qdisc, ...], txqueuelen: int | None
) -> tuple[QdiscStats, ...]:
    """A device's qdiscs over the interval. One created (or replaced: its kind changed, or a
    counter went back) since the last read has no interval yet and is left out until the next."""
    previous = {(q.handle, q.parent): q for q in before}
    out = []
    for q in now:
        b = previous.get((q.handle, q.parent))
        moved = (
            {c: getattr(q, c) - getattr(b, c) for c in QDISC_COUNTERS}
            if b is not None and b.kind == q.kind
            else None
        )
        if moved is None or min(moved.values()) < 0:
            continue
        limit, unit, knob = q.limit, q.limit_unit, "limit"
        if q.kind == "pfifo_fast" and limit is None:  # its ring is the device's txqueuelen
            limit, unit, knob = txqueuelen, "packets", "txqueuelen"
        out.append(
            QdiscStats(
                handle=q.handle,
                parent=q.parent,
                kind=q.kind,
                qlen=q.qlen,
                backlog=q.backlog,
                limit=limit,
                limit_unit=unit,
                limit_knob=knob,
                **moved,
            )
        )
    return tuple(out)
