"""The latency probe's socket table as user space reads it: the raw array decoded, free slots,
slots being handed over and sockets netscope does not follow (protocol 0) left out; and a socket
the table gave up (closed, its slot given to a later socket at the same address) counted to its
last read, apart from the socket that followed it."""

from __future__ import annotations

import ipaddress

from netscope.probes.latency import CLAIMING, SLOT, STATS, LatencyProbe, Slot, Totals, read_slots

SK = 0xFFFF8880_1234_5000


def slot(sk: int, gen: int, protocol: int, ino: int = 0, **fields: int) -> bytes:
    local = ipaddress.IPv4Address("10.200.0.2").packed + bytes(12)
    return SLOT.pack(
        sk,
        gen,
        protocol,
        2,  # AF_INET
        fields.get("port", 6001),
        0,
        local,
        bytes(16),
        ino,
        fields.get("arrivals", 0),
        0,
        fields.get("cgroup", 0),
        fields.get("reads", 0),
        fields.get("bytes", 0),
        fields.get("udp_read", 0),
        fields.get("tgid", 0),
    )


def test_used_slots_are_decoded_by_index_socket_and_generation() -> None:
    raw = b"".join(
        (
            bytes(SLOT.size),  # free
            slot(SK, 3, 17, 9001, arrivals=400, cgroup=77, reads=390, bytes=24960, udp_read=390, tgid=4242),
            slot(0xFFFF8880_1234_6000, 1, 0, reads=5),  # a unix socket: not followed
            slot(CLAIMING, 2, 17, reads=7),  # being given to a socket on another CPU
            bytes(SLOT.size),
        )
    )
    slots = read_slots(raw)
    assert list(slots) == [(1, SK, 3)]
    s = slots[(1, SK, 3)]
    assert (s.ino, s.tgid, s.reads, s.bytes, s.arrivals, s.cgroup) == (9001, 4242, 390, 24960, 400, 77)
    assert s.ident == (17, "10.200.0.2", 6001, "0.0.0.0", 0)


def udp(ino: int, port: int, reads: int) -> Slot:
    return Slot(SK, ino, 4242, reads, 100 * reads, reads, (17, "10.200.0.2", port, "0.0.0.0", 0))


def totals(slots: dict[tuple[int, int, int], Slot]) -> Totals:
    return Totals(slots, {}, {}, {}, {name: 0 for name in STATS})


def test_a_socket_given_up_counts_to_its_end_and_its_successor_from_zero() -> None:
    """Read at 10 reads; it read 15 more and closed; a new socket at its address (another inode, the
    slot's next generation) read 4: each keeps its own port and reads."""
    probe = LatencyProbe(cpus=(0,))
    before = totals({(1, SK, 3): udp(9001, 6001, 10)})
    after = totals({(1, SK, 3): udp(9001, 6001, 25), (1, SK, 4): udp(9002, 6002, 4)})
    sample = probe.delta(before, after)
    assert {(s.sport, s.reads, s.bytes) for s in sample.sockets} == {(6001, 15, 1500), (6002, 4, 400)}
    assert [(p.pid, p.reads) for p in sample.processes] == [(4242, 19)]


def test_arrivals_count_for_the_socket_s_last_reader_or_by_inode_when_none_read_it() -> None:
    """A socket read by 4242 queued 30 more; one never read (tgid 0) queued 12: the first count for
    the process, the second under its inode, for user space to find its holder."""
    probe = LatencyProbe(cpus=(0,))
    unread = Slot(SK + 64, 9005, 0, 0, 0, 0, (17, "10.200.0.2", 6005, "0.0.0.0", 0), cgroup=77)
    before = totals({(1, SK, 3): udp(9001, 6001, 10), (2, SK + 64, 1): unread})
    after = totals(
        {
            (1, SK, 3): Slot(SK, 9001, 4242, 10, 1000, 40, udp(9001, 6001, 0).ident),
            (2, SK + 64, 1): Slot(SK + 64, 9005, 0, 0, 0, 12, unread.ident, 77),
        }
    )
    sample = probe.delta(before, after)
    assert [(p.pid, p.reads, p.arrivals) for p in sample.processes] == [(4242, 0, 30)]
    assert sample.unread_arrivals == ((9005, 77, 12),) and sample.arrivals == 42
