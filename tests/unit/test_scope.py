"""The views narrowed to processes (--pid, --container, `pid`/`container` in `/`): what belongs to
them is kept (their reads, sends, drops at their sockets, flows addressed to their sockets), the
rest of the box's per-process figures left out, and what belongs to no process kept whole."""

from __future__ import annotations

import dataclasses

from netscope.model.filter import Scope, parse_filter
from netscope.model.sample import (
    DropBucket,
    DropEvent,
    DropReasonCount,
    DropsSample,
    FlowCount,
    FlowsOther,
    FlowsSample,
    HostInfo,
    LatencySample,
    ProcessFacts,
    ProcLatency,
    ProcSend,
    Sample,
    SockLatency,
)
from netscope.model.scope import narrowed, pids_in, scoped
from netscope.model.timeline import Timeline
from tests.unit.samples import two_cpu_sample

INFO = HostInfo("box", "6.18", (0, 1), 0.0)

WEB = "ab" * 32
NETNS = 4026532999


def proc(pid: int, comm: str) -> ProcLatency:
    return ProcLatency(pid, comm, 10, 1000, 10, ((3, 10),), 5000)


def sock(pid: int, port: int) -> SockLatency:
    return SockLatency(pid, 17, "0.0.0.0", port, "0.0.0.0", 0, 10, 1000, 10, ((3, 10),))


def flow(dport: int, packets: int) -> FlowCount:
    return FlowCount(
        NETNS,
        4,
        17,
        "10.200.0.1",
        40000,
        "10.200.0.2",
        dport,
        packets,
        64 * packets,
        (0,),
        (0,),
        (),
        0.0,
        0.0,
    )


def event(dport: int) -> DropEvent:
    return DropEvent(
        1.0,
        0,
        7,
        "SOCKET_RCVBUFF",
        "",
        "",
        0x0800,
        "veth0",
        NETNS,
        17,
        "10.200.0.1",
        "10.200.0.2",
        40000,
        dport,
    )


def bucket(reason: int, n: int, sk_ino: int) -> DropBucket:
    return DropBucket(reason, 0, "f+0x1", 0x0800, 2, "veth0", NETNS, (n, 0), sk_ino)


def box() -> Sample:
    """Two readers: web (pid 10, in a docker container, port 8080) and db (pid 20, port 5432); drops
    at each one's socket and one at no socket; a sender in each."""
    drops = DropsSample(
        (DropReasonCount(7, "SOCKET_RCVBUFF", "", (30, 0)), DropReasonCount(2, "NO_SOCKET", "", (5, 0))),
        (bucket(7, 10, 901), bucket(7, 20, 902), bucket(2, 5, 0)),
        (event(8080), event(5432)),
        2,
        0,
        0,
        0,
        1000,
    )
    return dataclasses.replace(
        two_cpu_sample(1.0),
        latency=LatencySample((proc(10, "web"), proc(20, "db")), (sock(10, 8080), sock(20, 5432)), 0),
        sends=(
            ProcSend(10, "web", 5, 500, 0),
            ProcSend(20, "db", 7, 700, 0),
            ProcSend(30, "gone", 1, 100, 77),
        ),
        drops=drops,
        socket_pids=((901, 10), (902, 20)),
        processes=(
            ProcessFacts(10, "web", f"/system.slice/docker-{WEB}.scope", NETNS, 3),
            ProcessFacts(20, "db", "/system.slice/postgresql.service", NETNS, 4),
        ),
        cgroups=((77, f"/system.slice/docker-{WEB}.scope"),),
        flows=FlowsSample((flow(8080, 100), flow(5432, 50), flow(9, 7)), 0, "", FlowsOther(3, 30, 1920)),
    )


def test_a_container_holds_its_processes_by_their_cgroup_and_a_gone_sender_by_the_one_it_sent_from() -> None:
    assert pids_in(Scope(containers=("abab",)), box()) == {10, 30}
    assert pids_in(Scope(frozenset({20})), box()) == {20}
    assert pids_in(Scope(frozenset({20}), ("docker:abab",)), box()) == {10, 20, 30}


def test_narrowed_to_a_process_its_reads_sends_drops_and_flows() -> None:
    mine = narrowed(box(), {20})
    assert mine.latency is not None
    assert [p.pid for p in mine.latency.processes] == [20] and [s.pid for s in mine.latency.sockets] == [20]
    assert [s.pid for s in mine.sends or ()] == [20]
    assert mine.drops is not None
    assert [(r.name, r.per_cpu) for r in mine.drops.reasons] == [("SOCKET_RCVBUFF", (20, 0))]
    assert [b.sk_ino for b in mine.drops.buckets] == [902]
    assert [e.dport for e in mine.drops.events] == [5432] and mine.drops.logged == 1
    assert mine.flows is not None
    assert [f.dport for f in mine.flows.flows] == [5432] and mine.flows.rest == FlowsOther()
    assert mine.socket_pids == ((902, 20),)
    # What belongs to no process is the whole box's.
    assert (mine.devices, mine.softnet, mine.snmp) == (box().devices, box().softnet, box().snmp)


def test_no_scope_is_the_whole_box() -> None:
    sample = box()
    assert scoped(sample, Scope()) is sample


def test_the_timeline_narrows_the_views_of_processes_and_keeps_the_stages_whole() -> None:
    """`--container web`: the Processes, Latency, Drops and Flows views hold web's; the receive
    path's stages (the home screen) still count every drop."""
    whole, narrow = Timeline(INFO), Timeline(INFO, flow_filter=parse_filter("container abab"))
    for t in (whole, narrow):
        t.add(box())
    a, b = whole.shown(), narrow.shown()
    assert a is not None and b is not None
    assert b.processes is not None and [r.pid for r in b.processes.rows] == [10, 30]
    assert b.latency is not None and [p.pid for p in b.latency.processes] == [10]
    assert b.drops is not None and a.drops is not None
    assert (b.drops.total_per_s, a.drops.total_per_s) == (10.0, 35.0)
    assert b.flows is not None and [r.flow.dport for r in b.flows.rows] == [8080]
    assert b.stage_history == a.stage_history
