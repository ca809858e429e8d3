"""Flows joined with the sockets that read them."""

from __future__ import annotations

import dataclasses
import time

from netscope.model.flows import Readers, build_flows_view, calibrated, carried, flow_label, with_unseen
from netscope.model.latency import SOCK_BITS, bucket_of
from netscope.model.sample import (
    FlowCount,
    FlowsOther,
    FlowsSample,
    HostInfo,
    LatencySample,
    ProcLatency,
    SocketOwner,
    SockLatency,
)
from tests.unit.samples import two_cpu_sample

OWN = 4026531840
INFO = HostInfo("box", "6.18", (0, 1), 0.0, netns=OWN)


def flow(sport: int, dport: int, proto: int = 17, saddr: str = "10.200.0.1") -> FlowCount:
    return FlowCount(OWN, 4, proto, saddr, sport, "10.200.0.2", dport, 100, 6400, (1,), (-1,), (), 0.0, 0.0)


def sock(pid: int, sport: int, daddr: str, dport: int, proto: int = 17) -> SockLatency:
    return SockLatency(
        pid, proto, "0.0.0.0", sport, daddr, dport, 10, 640, 10, ((bucket_of(50_000, SOCK_BITS), 10),)
    )


def test_connected_socket_matches_exactly() -> None:
    f = flow(40000, 6101, proto=6)
    s = sock(7, 6101, "10.200.0.1", 40000, proto=6)
    other = sock(8, 6101, "10.200.0.9", 40000, proto=6)
    assert Readers((other, s), (f,)).reader_of(f) is s


def test_unconnected_socket_only_when_it_reads_a_single_flow() -> None:
    a, b = flow(40001, 9), flow(40002, 9)
    s = sock(7, 9, "0.0.0.0", 0)
    assert Readers((s,), (a,)).reader_of(a) is s
    assert Readers((s,), (a, b)).reader_of(a) is None  # its reads cannot be split between two flows


def test_view_rates_reader_and_labels() -> None:
    f = dataclasses.replace(flow(40001, 9), drops=(("NO_SOCKET", 5),))
    sample = dataclasses.replace(
        two_cpu_sample(interval_s=2.0),
        flows=FlowsSample((f,), filtered=0, filter="udp", not_held=3),
        latency=LatencySample(
            (ProcLatency(7, "reader", 10, 640, 10, (), 60_000),), (sock(7, 9, "0.0.0.0", 0),), 0, 0
        ),
    )
    view = build_flows_view(sample, INFO)
    assert view is not None and view.not_held == 3 and view.filter == "udp"
    (row,) = view.rows
    assert row.label == "udp 10.200.0.1:40001 → 10.200.0.2:9" == flow_label(f)
    assert (row.rx_pps, row.copied_bytes, row.pid, row.comm, row.drops) == (50, 640, 7, "reader", 5)
    assert row.copy_p50_ns is not None and abs(row.copy_p50_ns - 50_000) < 0.07 * 50_000


def test_socket_owner_from_psutil_when_nobody_read_yet() -> None:
    f = flow(40001, 9)
    owners = (
        SocketOwner(17, "0.0.0.0", 53, "", 0, 11, "dns"),
        SocketOwner(17, "0.0.0.0", 9, "", 0, 12, "discard"),
    )
    assert Readers((), (f,), owners).owner_of(f) == owners[1]
    connected_elsewhere = (SocketOwner(17, "10.200.0.2", 9, "10.200.0.9", 5000, 13, "other"),)
    assert Readers((), (f,), connected_elsewhere).owner_of(f) is None
    sample = dataclasses.replace(two_cpu_sample(), flows=FlowsSample((f,), 0, ""), socket_owners=owners)
    (row,) = build_flows_view(sample, INFO).rows  # type: ignore[union-attr]
    assert (row.pid, row.comm, row.owner_only, row.copied_bytes) == (12, "discard", True, None)


def test_readers_of_20000_flows_are_found_in_linear_time() -> None:
    """Each flow to its own port, each port with its socket: every flow finds its reader. A scan of
    every socket and flow per flow (8e8 comparisons here) takes minutes; the bound is 20x what this
    takes on a 2-CPU VM busy with a flood."""
    n = 20_000
    flows = tuple(flow(40000 + i % 20000, 1024 + i) for i in range(n))
    sockets = tuple(sock(i, 1024 + i, "0.0.0.0", 0) for i in range(n))
    sample = dataclasses.replace(
        two_cpu_sample(),
        flows=FlowsSample(flows, 0, ""),
        latency=LatencySample((), sockets, 0, 0),
    )
    started = time.monotonic()
    view = build_flows_view(sample, INFO, top=None)
    elapsed = time.monotonic() - started
    assert view is not None and len(view.rows) == n
    assert all(r.pid == r.flow.dport - 1024 for r in view.rows)
    assert elapsed < 10.0, f"{elapsed:.1f} s for {n} flows"


def test_top_n_in_full_and_the_others_summed_to_the_totals() -> None:
    """1,000 flows, 10 of them heavy: the view lists the 10 heavy ones in full; the 990 others are
    one sum; rows plus others equal the sample's totals exactly, drops included; the watched flow
    is listed whatever its rank."""
    light = [dataclasses.replace(flow(30000 + i, 9), rx_packets=1, rx_bytes=64) for i in range(990)]
    light[7] = dataclasses.replace(light[7], drops=(("NO_SOCKET", 3),))
    heavy = [dataclasses.replace(flow(50000 + i, 9), rx_packets=1000 + i, rx_bytes=64_000) for i in range(10)]
    flows = tuple(light[:500] + heavy + light[500:])
    watched = light[900]
    sample = dataclasses.replace(
        two_cpu_sample(),
        flows=FlowsSample(flows, 0, "", watched=(0, 17, watched.saddr, watched.sport, watched.daddr, 9)),
    )
    view = build_flows_view(sample, INFO, top=10)
    assert view is not None
    listed = {r.flow.sport for r in view.rows}
    assert listed == {50000 + i for i in range(10)} | {watched.sport}
    assert view.others.flows == 989 and view.flow_count == 1000
    assert view.others.drops == (("NO_SOCKET", 3),)
    assert sum(r.flow.rx_packets for r in view.rows) + view.others.rx_packets == sum(
        f.rx_packets for f in flows
    )
    assert sum(r.flow.rx_bytes for r in view.rows) + view.others.rx_bytes == sum(f.rx_bytes for f in flows)
    everything = build_flows_view(sample, INFO, top=None)
    assert everything is not None and len(everything.rows) == 1000 and everything.others.flows == 0


def test_calibrated_scales_the_sampled_counts_and_keeps_the_drops() -> None:
    """A window's estimates times the kernel's count over them: packets, bytes, the filtered and
    the unheld; drops are counted one by one and stay."""
    dropped = dataclasses.replace(flow(40001, 9), drops=(("NO_SOCKET", 7),))
    sample = FlowsSample(
        (dropped,), 40, "udp", FlowsOther(3, 20, 1280, (("NO_SOCKET", 2),)), not_held=8, not_held_drops=1
    )
    out = calibrated(sample, 1.5)
    assert (out.flows[0].rx_packets, out.flows[0].rx_bytes, out.flows[0].drops) == (
        150,
        9600,
        (("NO_SOCKET", 7),),
    )
    assert out.rest == FlowsOther(3, 30, 1920, (("NO_SOCKET", 2),))
    assert (out.filtered, out.not_held, out.not_held_drops) == (60, 12, 1)


def test_packets_the_window_did_not_see_go_to_the_others_and_are_said_so() -> None:
    """A flood that stopped before the duty cycle's window opened: the window saw none of what
    softnet processed; the rows and others still add up to the kernel's count."""
    f = FlowCount(0, 4, 17, "10.0.0.1", 1, "10.0.0.2", 9, 10, 640, (), (), (), 0.0, 0.0)
    sample = FlowsSample((f,), 0, "", rest=FlowsOther(1, 5, 320))
    seen = with_unseen(sample, 2000)
    assert (seen.rest.rx_packets, seen.unseen, seen.flows) == (2005, 2000, (f,))
    assert with_unseen(dataclasses.replace(sample, filter="udp"), 2000) == dataclasses.replace(
        sample, filter="udp"
    )
    assert with_unseen(sample, 0) == sample


def test_an_interval_between_windows_carries_the_windows_packets_with_its_own_drops() -> None:
    """Between two windows the packet hook is off and the drop hook on: the window's estimates
    stand, the drops are the interval's own, matched to the window's flows as the probe matches
    them (a drop without a device or namespace goes to the same 5-tuple), and a flow that only
    dropped now is a row of its own."""
    busy = dataclasses.replace(flow(40001, 9), ifindex=3, drops=(("NO_SOCKET", 7),))
    quiet = dataclasses.replace(flow(40002, 9), ifindex=3)
    window = FlowsSample((busy, quiet), 40, "", FlowsOther(3, 20, 1280, (("NO_SOCKET", 2),)), not_held=8)

    def dropped(f: FlowCount, netns: int, ifindex: int, n: int, reason: str = "SOCKET_RCVBUFF") -> FlowCount:
        return dataclasses.replace(
            f, netns=netns, ifindex=ifindex, rx_packets=0, rx_bytes=0, drops=((reason, n),)
        )

    stranger = flow(40009, 9, saddr="10.200.0.9")
    now = FlowsSample(
        (
            dropped(busy, OWN, 3, 5),
            dropped(busy, 0, 0, 2, "NO_SOCKET"),
            dropped(quiet, OWN, 0, 1),
            dropped(stranger, OWN, 3, 4),
        ),
        0,
        "",
        FlowsOther(0, 0, 0, (("OTHERHOST", 6),)),
        not_held_drops=2,
    )
    out = carried(window, now)
    assert [(f.sport, f.rx_packets, f.drops) for f in out.flows] == [
        (40001, 100, (("SOCKET_RCVBUFF", 5), ("NO_SOCKET", 2))),
        (40002, 100, (("SOCKET_RCVBUFF", 1),)),
        (40009, 0, (("SOCKET_RCVBUFF", 4),)),
    ]
    assert out.rest == FlowsOther(2, 20, 1280, (("OTHERHOST", 6),))  # 5 flows in all, as the window had
    assert (out.filtered, out.not_held, out.not_held_drops) == (40, 8, 2)
    # An interval without drops carries the window's packets and no drops.
    bare = carried(window, FlowsSample((), 0, ""))
    assert [(f.rx_packets, f.drops) for f in bare.flows] == [(100, ()), (100, ())] and bare.rest.drops == ()
