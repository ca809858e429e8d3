"""The Processes view: each reader joined with what /proc says of it (container or unit, network
namespace, sockets), and the rows summed per container."""

from __future__ import annotations

import dataclasses

from netscope.model.latency import LatencyView, Percentiles, ProcessRow
from netscope.model.processes import PROC_SORTS, build_processes_view, sorted_rows
from netscope.model.sample import DropBucket, DropReasonCount, DropsSample, ProcessFacts, ProcSend

ID = "ab" * 32
NETNS = 4026532999


def reader(pid: int, comm: str, bytes_per_s: float, p99_ns: float) -> ProcessRow:
    stats = Percentiles(10, 0, p99_ns / 10, p99_ns / 2, p99_ns, int(p99_ns))
    return ProcessRow(pid, comm, int(bytes_per_s // 100), bytes_per_s / 100, bytes_per_s, stats, ())


def latency(*rows: ProcessRow, sample_rate: int = 1) -> LatencyView:
    return LatencyView(
        1.0, Percentiles(0, 0, None, None, None, None), (), rows, 0, None, 0, sample_rate=sample_rate
    )


def test_each_reader_with_its_container_namespace_and_sockets_busiest_first() -> None:
    facts = (
        ProcessFacts(10, "nginx", f"/system.slice/docker-{ID}.scope", NETNS, 12),
        ProcessFacts(11, "nginx", f"/system.slice/docker-{ID}.scope", NETNS, 3),
        ProcessFacts(20, "sshd", "/system.slice/ssh.service", 4026531840, 2),
    )
    view = build_processes_view(
        latency(reader(20, "sshd", 1e3, 5e3), reader(10, "nginx", 5e6, 2e6), reader(11, "nginx", 1e6, 9e6)),
        facts,
    )
    assert [r.pid for r in view.rows] == [10, 11, 20]
    nginx = view.rows[0]
    assert (nginx.group, nginx.container, nginx.netns, nginx.sockets) == (
        "docker:abababababab",
        True,
        NETNS,
        12,
    )
    assert (view.rows[2].group, view.rows[2].container) == ("ssh.service", False)
    grouped = view.groups[0]
    assert (grouped.group, grouped.processes, grouped.pid, grouped.sockets) == (
        "docker:abababababab",
        2,
        0,
        15,
    )
    assert grouped.bytes_per_s == 6e6 and grouped.p99_ns == 9e6  # summed; the slowest member's latency
    assert grouped.netns == NETNS


def test_a_reader_gone_before_proc_was_read_has_no_group_and_sampled_latency_is_marked() -> None:
    view = build_processes_view(latency(reader(30, "gone", 1e3, 1e3), sample_rate=8), ())
    (row,) = view.rows
    assert (row.group, row.netns, row.sockets, row.estimated) == ("", 0, None, True)


def test_drops_at_a_process_s_sockets_are_its_own_even_when_it_reads_nothing() -> None:
    """The drop reasons' socket inodes, their processes found in /proc: a reader that never reads
    (its buffer full) is a row of its own, with its drops by reason."""
    rcvbuf = DropReasonCount(7, "SOCKET_RCVBUFF", "", (300, 0))
    no_socket = DropReasonCount(2, "NO_SOCKET", "", (50, 0))
    buckets = (
        DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", NETNS, (200, 0), sk_ino=9001),
        DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", NETNS, (100, 0), sk_ino=9002),
        DropBucket(2, 0, "__udp4_lib_rcv+0x1", 0x0800, 2, "eth0", NETNS, (50, 0)),  # no socket
    )
    drops = DropsSample((rcvbuf, no_socket), buckets, (), 0, 0, 0, 0, 1000)
    facts = (ProcessFacts(40, "stuck", f"/machine.slice/libpod-{ID}.scope", NETNS, 2),)
    view = build_processes_view(
        latency(reader(10, "nginx", 5e6, 2e6)), facts, drops, ((9001, 40), (9002, 40)), interval_s=2.0
    )
    stuck = next(r for r in view.rows if r.pid == 40)
    assert (stuck.comm, stuck.group, stuck.reads_per_s, stuck.p99_ns) == (
        "stuck",
        "podman:abababababab",
        0.0,
        None,
    )
    assert (stuck.drops, stuck.drops_per_s, stuck.estimated) == ((("SOCKET_RCVBUFF", 300),), 150.0, False)
    assert next(r for r in view.rows if r.pid == 10).drops == ()
    assert view.groups[-1].drops == (("SOCKET_RCVBUFF", 300),)


def test_senders_are_rows_with_what_they_sent_and_one_gone_keeps_the_cgroup_it_sent_from() -> None:
    """The send probe's senders join the readers: a process that reads and sends has both rates
    on one row; one that only sends is a row of its own; one gone from /proc before it was read
    takes its container from the cgroup it sent from (bpf_get_current_cgroup_id, its path looked
    up). The rows are ordered by bytes both ways; the sampled sends are marked."""
    facts = (ProcessFacts(10, "nginx", f"/system.slice/docker-{ID}.scope", NETNS, 12),)
    sends = (
        ProcSend(10, "nginx", 50, 4e6, 777),
        ProcSend(50, "sender", 1000, 9e6, 888),
    )
    view = build_processes_view(
        latency(reader(10, "nginx", 1e6, 2e6)),
        facts,
        interval_s=2.0,
        sends=sends,
        send_rate=4,
        cgroups=((888, f"/kubepods.slice/kubepods-pod{ID[:8]}_1111_2222_3333_444455556666.slice"),),
    )
    assert [r.pid for r in view.rows] == [50, 10]  # 4.5 MB/s out against 1 + 2 MB/s both ways
    sender, nginx = view.rows
    assert (nginx.bytes_per_s, nginx.tx_bytes_per_s, nginx.tx_estimated) == (1e6, 2e6, True)
    assert (sender.comm, sender.reads_per_s, sender.tx_bytes_per_s, sender.sockets) == (
        "sender",
        0.0,
        4.5e6,
        None,
    )
    assert sender.container and sender.group == "pod abababab-1111-2222-3333-444455556666 (guaranteed)"
    assert next(g for g in view.groups if g.group == nginx.group).tx_bytes_per_s == 2e6


def test_packets_queued_on_a_process_s_sockets_by_its_last_read_or_by_the_socket_s_holder() -> None:
    """Arrivals count for the process that read the socket last; a socket no process read yet
    counts for the process holding it (/proc), and one held by no known process for none."""
    row = ProcessRow(10, "nginx", 5, 5.0, 500.0, Percentiles(0, 0, None, None, None, None), (), arrivals=8)
    view = LatencyView(
        2.0,
        Percentiles(0, 0, None, None, None, None),
        (),
        (row,),
        0,
        None,
        0,
        sample_rate=4,
        # 9003: no process known to hold it, its own cgroup 55 (a container); 9004: neither known
        unread_arrivals=((9001, 0, 40), (9003, 55, 6), (9004, 0, 2)),
    )
    facts = (ProcessFacts(40, "stuck", "/system.slice/stuck.service", NETNS, 1),)
    out = build_processes_view(
        view, facts, socket_pids=((9001, 40),), interval_s=2.0, cgroups=((55, f"/docker/{ID}"),)
    )
    by_pid = {r.pid: r for r in out.rows}
    assert set(by_pid) == {10, 40, 0}
    assert by_pid[10].rx_packets_per_s == 4.0 and by_pid[40].rx_packets_per_s == 20.0
    assert by_pid[40].estimated and by_pid[40].reads_per_s == 0.0  # sampled arrivals: an estimate
    assert (by_pid[0].comm, by_pid[0].group, by_pid[0].rx_packets_per_s) == (
        "(no process)",
        "docker:abababababab",
        3.0,
    )
    assert sum(g.rx_packets_per_s for g in out.groups) == 27.0


def test_drops_at_a_socket_no_process_holds_go_to_its_own_cgroup_s_container() -> None:
    """The drop's socket's own cgroup (sk_cgrp_data): a socket whose process was not found (gone,
    or its /proc not read) still has its container, as a row of no process; a process /proc did
    not tell gets its sockets' cgroup."""
    rcvbuf = DropReasonCount(7, "SOCKET_RCVBUFF", "", (30, 0))
    buckets = (
        DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", NETNS, (20, 0), 9001, sk_cgroup=55),
        DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", NETNS, (10, 0), 9002, sk_cgroup=55),
    )
    drops = DropsSample((rcvbuf,), buckets, (), 0, 0, 0, 0, 1000)
    path = f"/system.slice/docker-{ID}.scope"
    view = build_processes_view(None, (), drops, ((9002, 77),), cgroups=((55, path),))
    by_pid = {r.pid: r for r in view.rows}
    assert by_pid[0].comm == "(no process)" and by_pid[0].drops == (("SOCKET_RCVBUFF", 20),)
    assert by_pid[77].group == by_pid[0].group == "docker:abababababab"
    (group,) = view.groups
    assert (group.processes, group.drops) == (1, (("SOCKET_RCVBUFF", 30),))


def test_the_rows_sort_by_each_column_a_top_like_list_sorts_by() -> None:
    slow, busy = reader(10, "slow", 1e3, 9e6), reader(20, "busy", 5e6, 1e3)
    view = build_processes_view(latency(slow, busy), ())
    assert [r.pid for r in sorted_rows(view.rows, "bytes")] == [20, 10]
    assert [r.pid for r in sorted_rows(view.rows, "copy p99")] == [10, 20]
    assert [r.comm for r in sorted_rows(view.rows, "process")] == ["busy", "slow"]
    assert set(PROC_SORTS) >= {"bytes", "packets", "drops", "copy p99", "sent", "process"}


def test_a_reader_gone_before_proc_was_read_keeps_the_container_it_read_from() -> None:
    """Its first timed read recorded its cgroup (bpf_get_current_cgroup_id), mapped to a path."""
    row = dataclasses.replace(reader(30, "gone", 1e3, 1e3), cgroup_id=55)
    view = build_processes_view(latency(row), (), cgroups=((55, f"/system.slice/docker-{ID}.scope"),))
    (only,) = view.rows
    assert (only.group, only.container) == ("docker:abababababab", True)
