"""TCP flows both ways: a received flow's socket on this box (its destination) and, where the
sender is on this box too (another namespace, or loopback), the sending socket, with what the TCP
probe saw of each in the interval. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netscope.model.sample import FlowCount, TcpConn

IPPROTO_TCP = 6


@dataclass(frozen=True)
class TcpPath:
    """A TCP flow's two ends, as far as this box holds them (None: not here, or nothing happened
    to it in the interval)."""

    local: TcpConn | None  # the socket that receives the flow
    peer: TcpConn | None  # the socket that sends it

    @property
    def ends(self) -> tuple[TcpConn, ...]:
        return tuple(c for c in (self.local, self.peer) if c is not None)

    @property
    def retransmits(self) -> int:
        """Segments sent again on the connection, both ways (each end counts its own)."""
        return sum(c.retransmits for c in self.ends)

    @property
    def resets(self) -> int:
        return sum(c.resets_sent + c.resets_received for c in self.ends)

    @property
    def srtt_us(self) -> int | None:
        """The smoothed RTT the sender measured (it times its data's ACKs), else the receiver's."""
        for c in (self.peer, self.local):
            if c is not None and c.srtt_us:
                return c.srtt_us
        return None

    @property
    def zero_windows(self) -> int:
        """Segments received while the receiver's window was 0 (sampled): its reader is behind."""
        return (self.local.zero_rcv_wnd if self.local else 0) + (self.peer.zero_snd_wnd if self.peer else 0)


ConnKey = tuple[str, int, str, int]  # local address, port, remote address, port


class TcpIndex:
    """An interval's connections, found by a flow's 5-tuple."""

    def __init__(self, conns: Iterable[TcpConn]) -> None:
        self._in_netns: dict[tuple[int, ConnKey], TcpConn] = {}
        self._anywhere: dict[ConnKey, TcpConn] = {}
        for c in conns:
            key = (c.laddr, c.lport, c.raddr, c.rport)
            self._in_netns[(c.netns, key)] = c
            self._anywhere.setdefault(key, c)

    def path(self, flow: FlowCount) -> TcpPath | None:
        """The flow's two sockets: the receiver in the flow's namespace (anywhere when the flow's
        namespace is unknown), the sender anywhere on this box; None for a flow not TCP, or when
        neither had anything in the interval."""
        if flow.proto != IPPROTO_TCP:
            return None
        receiving = (flow.daddr, flow.dport, flow.saddr, flow.sport)
        local = self._in_netns.get((flow.netns, receiving)) if flow.netns else self._anywhere.get(receiving)
        peer = self._anywhere.get((flow.saddr, flow.sport, flow.daddr, flow.dport))
        if local is None and peer is None:
            return None
        return TcpPath(local, peer)
