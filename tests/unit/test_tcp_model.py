"""TCP flows both ways, from hand-made intervals: a received flow's receiving socket is found in
the flow's namespace and its sender anywhere on the box; the connection's retransmits are both
ends'; srtt is the sender's; tcp_retransmits names the drops logged here when there are some;
rcv_window_limited is seen at either end and names tcp_rmem; the flows JSON carries both ends."""

from __future__ import annotations

import dataclasses

from netscope.model.cpu import build_cpu_view
from netscope.model.findings import FindingInput, rcv_window_limited, tcp_retransmits
from netscope.model.flows import build_flows_view
from netscope.model.json_encoder import tcp_json
from netscope.model.sample import (
    DropEvent,
    DropsSample,
    FlowCount,
    FlowsSample,
    HostInfo,
    Sample,
    TcpConn,
    TcpSample,
)
from netscope.model.tcp import TcpIndex
from tests.unit.samples import two_cpu_sample

A, B = 4026532001, 4026532002  # the sender's and the receiver's namespaces
INFO = HostInfo("box", "6.18.44", (0, 1), 0.0, 4026531840)


def conn(netns: int, local: tuple[str, int], remote: tuple[str, int], **fields: int | None) -> TcpConn:
    base: dict[str, int | None] = dict(
        retransmits=0,
        resets_sent=0,
        resets_received=0,
        exceed_buf=0,
        rcv_space_adjust=0,
        rcvbuf_grow=0,
        segments=0,
        zero_rcv_wnd=0,
        zero_snd_wnd=0,
        srtt_us=None,
        snd_cwnd=None,
        snd_ssthresh=None,
        rcv_wnd=None,
        snd_wnd=None,
        rcvbuf=None,
        window_clamp=None,
    )
    base.update(fields)
    return TcpConn(netns, 4, local[0], local[1], remote[0], remote[1], **base)  # type: ignore[arg-type]


SENDER = conn(A, ("10.0.0.1", 40000), ("10.0.0.2", 5201), retransmits=30, srtt_us=900, snd_cwnd=12)
RECEIVER = conn(B, ("10.0.0.2", 5201), ("10.0.0.1", 40000), retransmits=2, segments=800, srtt_us=50,
                rcv_wnd=65536, rcvbuf=131072, window_clamp=65536)  # fmt: skip
FLOW = FlowCount(B, 4, 6, "10.0.0.1", 40000, "10.0.0.2", 5201, 1000, 1_400_000, (0,), (0,), (), 0.0, 0.0, 3)


def test_a_flow_finds_its_receiver_in_its_namespace_and_its_sender_anywhere() -> None:
    elsewhere = dataclasses.replace(RECEIVER, netns=A, retransmits=99)  # same tuple, another namespace
    index = TcpIndex((SENDER, RECEIVER, elsewhere))
    path = index.path(FLOW)
    assert path is not None and path.local == RECEIVER and path.peer == SENDER
    assert (path.retransmits, path.srtt_us) == (32, 900)  # both ends; the sender's RTT
    assert index.path(dataclasses.replace(FLOW, proto=17)) is None
    assert TcpIndex((SENDER,)).path(FLOW) == dataclasses.replace(path, local=None)
    assert TcpIndex(()).path(FLOW) is None


def test_flows_view_rows_and_json_carry_both_ends() -> None:
    flows = FlowsSample((FLOW,), 0, "")
    s = dataclasses.replace(two_cpu_sample(), flows=flows, tcp=TcpSample((SENDER, RECEIVER)))
    view = build_flows_view(s, INFO)
    assert view is not None
    (row,) = view.rows
    assert row.tcp is not None and row.tcp.retransmits == 32
    out = tcp_json(row.tcp)
    assert out["retransmits"] == 32
    assert out["receiver"]["local"] == "10.0.0.2:5201" and out["receiver"]["rcvbuf"] == 131072
    assert out["sender"]["srtt_us"] == 900 and out["sender"]["snd_cwnd"] == 12


def finding_input(s: Sample, tunables: dict[str, str]) -> FindingInput:
    return FindingInput(INFO, s, build_cpu_view(s, INFO.cpus), tunables)


def test_tcp_retransmits_names_the_drops_logged_here_or_the_path_beyond() -> None:
    s = dataclasses.replace(two_cpu_sample(interval_s=2.0), tcp=TcpSample((SENDER, RECEIVER)))
    (beyond,) = tcp_retransmits(finding_input(s, {}))  # 15/s at the sender; the receiver's 1/s is not
    assert beyond.id == f"tcp_retransmits:{A}:10.0.0.1:40000:10.0.0.2:5201"
    assert "lost beyond this box" in beyond.summary and beyond.current == "no drop of it logged on this box"
    assert dict(beyond.evidence)["per_s"] == 15.0 and dict(beyond.evidence)["srtt_us"] == 900
    event = DropEvent(0.0, 0, 5, "NETFILTER_DROP", "", "nft_do_chain+0x10", 0x800, "vb", B, 6,
                      "10.0.0.1", "10.0.0.2", 40000, 5201)  # fmt: skip
    drops = DropsSample((), (), (event, event), 2, 0, 0, 0, 1000)
    (here,) = tcp_retransmits(finding_input(dataclasses.replace(s, drops=drops), {}))
    assert "this box drops its packets" in here.summary and here.current == "dropped here: NETFILTER_DROP 2"


def test_rcv_window_limited_at_either_end_names_tcp_rmem() -> None:
    stalled = dataclasses.replace(RECEIVER, zero_rcv_wnd=40, rcv_wnd=0)
    waiting = dataclasses.replace(SENDER, zero_snd_wnd=12, snd_wnd=0)
    s = dataclasses.replace(two_cpu_sample(), tcp=TcpSample((stalled, waiting)))
    at_receiver, at_sender = rcv_window_limited(
        finding_input(s, {"net.ipv4.tcp_rmem": "4096 131072 6291456"})
    )
    assert "10.0.0.2:5201 lets its TCP receive buffer fill" in at_receiver.summary
    assert at_receiver.current == "tcp_rmem 4096 131072 6291456; its SO_RCVBUF 131072, window_clamp 65536"
    assert "sysctl -w net.ipv4.tcp_rmem='4096 131072 12582912'" in at_receiver.suggestion
    assert dict(at_sender.evidence)["seen_at"] == "sender" and "10.0.0.2:5201" in at_sender.summary
    quiet = dataclasses.replace(two_cpu_sample(), tcp=TcpSample((SENDER, RECEIVER)))
    assert not list(rcv_window_limited(finding_input(quiet, {})))
