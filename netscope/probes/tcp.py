"""TCP probe (bpf_src/tcp.bpf.c): per connection, its retransmits, resets, receive-buffer events,
and the state (srtt, cwnd, both windows, the receive buffer) a sample of its received segments saw.

Its table holds one interval and is swapped and read whole every interval (IntervalTables), so a
connection shows only where something happened to it in the interval, and none is kept longer."""

from __future__ import annotations

from typing import Any, ClassVar

from netscope.model.sample import TcpConn, TcpSample
from netscope.probes.base import IntervalTables, Probe, address_text, map_max
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets
from netscope.probes.tracefs import tracepoint_fields

TCP_CONNS = 16384  # connections with events in one interval
AF_INET, AF_INET6 = 2, 10
EVENTS = ("retransmits", "resets_sent", "resets_received", "exceed_buf", "rcv_space_adjust", "rcvbuf_grow")


def decode(key: Any, value: Any) -> TcpConn | None:
    """A table entry as a connection; None for a family neither IPv4 nor IPv6."""
    version = {AF_INET: 4, AF_INET6: 6}.get(int(key.family))
    if version is None:
        return None
    sampled = int(value.last_ns) != 0

    def state(name: str) -> int | None:
        return int(getattr(value, name)) if sampled else None

    return TcpConn(
        netns=int(key.netns),
        family=version,
        laddr=address_text(key.laddr, version),
        lport=int(key.lport),
        raddr=address_text(key.raddr, version),
        rport=int(key.rport),
        **{name: int(getattr(value, name)) for name in EVENTS},
        segments=int(value.probes),
        zero_rcv_wnd=int(value.zero_rcv_wnd),
        zero_snd_wnd=int(value.zero_snd_wnd),
        srtt_us=state("srtt_us"),
        snd_cwnd=state("snd_cwnd"),
        snd_ssthresh=state("snd_ssthresh"),
        rcv_wnd=state("rcv_wnd"),
        snd_wnd=state("snd_wnd"),
        rcvbuf=int(value.rcvbuf) if sampled or int(value.rcvbuf_grow) else None,
        window_clamp=state("window_clamp"),
    )


class TcpProbe(Probe[TcpSample]):
    name = "tcp"
    sample_field = "tcp"
    source_file = "tcp.bpf.c"
    tracepoints = (
        ("tcp", "tcp_retransmit_skb"),
        ("tcp", "tcp_send_reset"),
        ("tcp", "tcp_receive_reset"),
        ("tcp", "tcp_rcv_space_adjust"),
        ("tcp", "tcp_rcvbuf_grow"),
        ("sock", "sock_exceed_buf_limit"),
        ("tcp", "tcp_probe"),
    )
    per_packet = ("tcp_probe",)
    sampled = True
    optional: ClassVar[tuple[str, ...]] = ("tcp_rcvbuf_grow",)  # Linux 6.17
    full_map = "tcp_full"

    def __init__(self, cpus: tuple[int, ...], flt: Any = None) -> None:
        super().__init__(cpus, flt)
        self._tables = IntervalTables(("tcp_conns",))

    def defines(self) -> dict[str, int | str]:
        defines: dict[str, int | str] = {**kernel_offsets(kernel_btf()), "NS_TCP_CONNS": map_max(TCP_CONNS)}
        if "err" in (tracepoint_fields("tcp", "tcp_retransmit_skb") or ()):  # Linux 6.12
            defines["NS_TCP_RETRANSMIT_ERR"] = 1
        return defines

    def before_attach(self, bpf: Any) -> None:
        self._tables.prime(bpf)

    def read_totals(self, bpf: Any) -> tuple[TcpConn, ...]:
        """The interval's table, read and emptied (nothing writes it once swapped)."""
        table = bpf[f"tcp_conns_{self._tables.swap(bpf)}".encode()]
        conns = tuple(c for c in (decode(k, v) for k, v in table.items()) if c is not None)
        table.clear()
        return conns

    def delta(self, previous: tuple[TcpConn, ...], current: tuple[TcpConn, ...]) -> TcpSample:
        return TcpSample(current)
