"""The BTF reader: a hand-built blob (anonymous unions, bitfield flag, enums), then this kernel."""

from __future__ import annotations

import os
import struct

import pytest

from netscope.probes import btf as B


class BlobBuilder:
    def __init__(self) -> None:
        self.strings = b"\0"
        self.types = b""

    def s(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(
        self, kind: int, name: str, vlen: int, size_or_type: int, body: bytes, kflag: bool = False
    ) -> None:
        info = (kind << 24) | vlen | (1 << 31 if kflag else 0)
        self.types += struct.pack("<III", self.s(name), info, size_or_type) + body

    def blob(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", B.BTF_MAGIC, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return hdr + self.types + self.strings


def sample_blob() -> bytes:
    b = BlobBuilder()
    # 1: int
    b.add(B.KIND_INT, "int", 0, 4, struct.pack("<I", 32))
    # 2: anonymous union { int a; int b; }
    b.add(B.KIND_UNION, "", 2, 4, struct.pack("<III", b.s("a"), 1, 0) + struct.pack("<III", b.s("b"), 1, 0))
    # 3: anonymous struct { int c; union(2) at bit 32; }
    b.add(B.KIND_STRUCT, "", 2, 8, struct.pack("<III", b.s("c"), 1, 0) + struct.pack("<III", 0, 2, 32))
    # 4: struct outer { int x; struct(3) at bit 64; int flags:3 (kflag: bitfield size in high byte) }
    b.add(
        B.KIND_STRUCT,
        "outer",
        3,
        24,
        struct.pack("<III", b.s("x"), 1, 0)
        + struct.pack("<III", 0, 3, 64)
        + struct.pack("<III", b.s("flags"), 1, (3 << 24) | 160),
        kflag=True,
    )
    # 5: typedef outer_t -> 4 ; 6: struct holder { outer_t inner at byte 16 }
    b.add(B.KIND_TYPEDEF, "outer_t", 0, 4, b"")
    b.add(B.KIND_STRUCT, "holder", 1, 40, struct.pack("<III", b.s("inner"), 5, 128))
    # 7: enum reason { R_A = 0, R_B = 5 }
    b.add(B.KIND_ENUM, "reason", 2, 4, struct.pack("<II", b.s("R_A"), 0) + struct.pack("<II", b.s("R_B"), 5))
    # 8: func proto with one param, 9: ptr (exercise the skipping of kind-specific data)
    b.add(B.KIND_FUNC_PROTO, "", 1, 1, struct.pack("<II", 0, 1))
    b.add(B.KIND_PTR, "", 0, 4, b"")
    return b.blob()


def test_members_inside_anonymous_unions_and_structs() -> None:
    t = B.BTF(sample_blob())
    assert t.member_offset("outer", "x") == 0
    assert t.member_offset("outer", "c") == 8
    assert t.member_offset("outer", "a") == 12
    assert t.member_offset("outer", "b") == 12
    assert t.struct_size("outer") == 24
    assert t.member_offset("holder", "inner.a") == 16 + 12


def test_bitfields_and_missing_members_are_errors() -> None:
    t = B.BTF(sample_blob())
    with pytest.raises(B.BTFError, match="bitfield"):
        t.member_offset("outer", "flags")
    with pytest.raises(B.BTFError, match="no member 'nope'"):
        t.member_offset("outer", "nope")
    with pytest.raises(B.BTFError, match="no struct 'missing'"):
        t.member_offset("missing", "x")


def test_enum_values() -> None:
    assert B.BTF(sample_blob()).enum("reason") == {"R_A": 0, "R_B": 5}


def test_corrupt_blob_is_a_clear_error() -> None:
    with pytest.raises(B.BTFError, match="magic"):
        B.BTF(b"\0" * 64)
    with pytest.raises(B.BTFError, match="too short"):
        B.BTF(b"\x9f\xeb")


def test_running_kernel_btf_parses_and_gives_sane_skb_offsets() -> None:
    t = B.kernel_btf()
    size = t.struct_size("sk_buff")
    for member in ("dev", "len", "queue_mapping", "transport_header", "network_header", "head", "data"):
        assert 0 <= t.member_offset("sk_buff", member) < size
    assert "SKB_DROP_REASON_NOT_SPECIFIED" in t.enum("skb_drop_reason")


@pytest.mark.skipif(not os.uname().release.startswith("6.18."), reason="offsets measured on 6.18 (DESIGN.md)")
def test_known_offsets_of_this_kernel() -> None:
    """DESIGN.md's measured layout of sk_buff and net_device on the 6.18 machines."""
    t = B.kernel_btf()
    assert t.struct_size("sk_buff") == 224
    expected = {
        "dev": 16,
        "len": 112,
        "queue_mapping": 124,
        "transport_header": 178,
        "network_header": 180,
        "head": 192,
        "data": 200,
    }
    assert {m: t.member_offset("sk_buff", m) for m in expected} == expected
    assert t.member_offset("net_device", "ifindex") == 224
    assert t.member_offset("net_device", "name") == 280
