"""The latency probe's socket table as user space reads it: the raw array decoded, free slots and
sockets netscope does not follow (protocol 0) left out."""

from __future__ import annotations

import ipaddress

from netscope.probes.latency import SLOT, read_slots


def slot(sk: int, gen: int, protocol: int, **fields: int) -> bytes:
    local = ipaddress.IPv4Address("10.200.0.2").packed + bytes(12)
    return SLOT.pack(
        sk,
        gen,
        protocol,
        2,  # AF_INET
        6001,
        0,
        local,
        bytes(16),
        fields.get("arrivals", 0),
        0,
        fields.get("reads", 0),
        fields.get("bytes", 0),
        fields.get("udp_read", 0),
        fields.get("tgid", 0),
    )


def test_used_slots_are_decoded_by_index_socket_and_generation() -> None:
    raw = b"".join(
        (
            bytes(SLOT.size),  # free
            slot(0xFFFF8880_1234_5000, 3, 17, arrivals=400, reads=390, bytes=24960, udp_read=390, tgid=4242),
            slot(0xFFFF8880_1234_6000, 1, 0, reads=5),  # a unix socket: not followed
            bytes(SLOT.size),
        )
    )
    slots = read_slots(raw)
    assert list(slots) == [(1, 0xFFFF8880_1234_5000, 3)]
    s = slots[(1, 0xFFFF8880_1234_5000, 3)]
    assert (s.tgid, s.reads, s.bytes, s.arrivals) == (4242, 390, 24960, 400)
    assert s.ident == (17, "10.200.0.2", 6001, "0.0.0.0", 0)
