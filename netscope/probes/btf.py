"""A small reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`).

Why: BCC compiles against whatever headers exist, and those may be another kernel's (here Debian's
6.1 headers on a 6.18 kernel), so struct layouts from headers are wrong. The running kernel's BTF is
the truth for struct member offsets and enum values; probes pass them to the C side as -D defines.
No I/O beyond reading the blob; parsing is pure and unit-tested with hand-built blobs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")

BTF_MAGIC = 0xEB9F

# BTF_KIND_* from include/uapi/linux/btf.h
KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

# Bytes of kind-specific data after the 12-byte common header: (fixed, per vlen entry).
_EXTRA: dict[int, tuple[int, int]] = {
    KIND_INT: (4, 0),
    KIND_PTR: (0, 0),
    KIND_ARRAY: (12, 0),
    KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8),
    KIND_FWD: (0, 0),
    KIND_TYPEDEF: (0, 0),
    KIND_VOLATILE: (0, 0),
    KIND_CONST: (0, 0),
    KIND_RESTRICT: (0, 0),
    KIND_FUNC: (0, 0),
    KIND_FUNC_PROTO: (0, 8),
    KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12),
    KIND_FLOAT: (0, 0),
    KIND_DECL_TAG: (4, 0),
    KIND_TYPE_TAG: (0, 0),
    KIND_ENUM64: (0, 12),
}


class BTFError(Exception):
    """The BTF blob is missing, corrupt, or lacks a type or member a probe needs."""


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True)
class BTFType:
    kind: int
    name: str
    size_or_type: int
    members: tuple[Member, ...] = ()
    enum_values: tuple[tuple[str, int], ...] = ()


class BTF:
    """Types of one BTF blob, indexed by id (id 0 is `void`)."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 24:
            raise BTFError("BTF blob too short")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != BTF_MAGIC:
            raise BTFError(f"bad BTF magic {magic:#x}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        strings = blob[hdr_len + str_off : hdr_len + str_off + str_len]
        self.types: list[BTFType] = [BTFType(0, "void", 0)]
        self._by_name: dict[tuple[int, str], int] = {}
        self._parse(blob[hdr_len + type_off : hdr_len + type_off + type_len], strings)

    @staticmethod
    def _string(strings: bytes, off: int) -> str:
        end = strings.find(b"\0", off)
        return strings[off:end].decode("ascii", "replace")

    def _parse(self, data: bytes, strings: bytes) -> None:
        pos = 0
        while pos < len(data):
            name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
            pos += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            kind_flag = bool(info >> 31)
            if kind not in _EXTRA:
                raise BTFError(f"unknown BTF kind {kind} at type {len(self.types)}")
            fixed, per = _EXTRA[kind]
            members: tuple[Member, ...] = ()
            enum_values: tuple[tuple[str, int], ...] = ()
            body = pos + fixed
            if kind in (KIND_STRUCT, KIND_UNION):
                mlist = []
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", data, body + 12 * i)
                    # kind_flag: the offset word holds the bitfield size in its high byte.
                    bit_off, bf_size = (m_off & 0xFFFFFF, m_off >> 24) if kind_flag else (m_off, 0)
                    mlist.append(Member(self._string(strings, m_name), m_type, bit_off, bf_size))
                members = tuple(mlist)
            elif kind == KIND_ENUM:
                signed = kind_flag
                elist = []
                for i in range(vlen):
                    e_name, e_val = struct.unpack_from("<Ii" if signed else "<II", data, body + 8 * i)
                    elist.append((self._string(strings, e_name), e_val))
                enum_values = tuple(elist)
            elif kind == KIND_ENUM64:
                elist = []
                for i in range(vlen):
                    e_name, lo, hi = struct.unpack_from("<III", data, body + 12 * i)
                    elist.append((self._string(strings, e_name), (hi << 32) | lo))
                enum_values = tuple(elist)
            pos = body + per * vlen
            name = self._string(strings, name_off)
            self.types.append(BTFType(kind, name, size_or_type, members, enum_values))
            if name:
                self._by_name.setdefault((kind, name), len(self.types) - 1)

    def find(self, kind: int, name: str) -> BTFType:
        idx = self._by_name.get((kind, name))
        if idx is None:
            raise BTFError(f"the kernel's BTF has no {_KIND_WORD.get(kind, 'type')} {name!r}")
        return self.types[idx]

    def has(self, kind: int, name: str) -> bool:
        return (kind, name) in self._by_name

    def _resolve(self, type_id: int) -> BTFType:
        """Skip typedefs and qualifiers to the underlying type."""
        t = self.types[type_id]
        while t.kind in (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG):
            t = self.types[t.size_or_type]
        return t

    def _find_member(self, t: BTFType, member: str) -> tuple[int, Member] | None:
        """(bit offset, member) of `member` in `t`, looking inside anonymous structs and unions."""
        for m in t.members:
            if m.name == member:
                return m.bit_offset, m
            if not m.name:
                inner = self._resolve(m.type_id)
                if inner.kind in (KIND_STRUCT, KIND_UNION):
                    found = self._find_member(inner, member)
                    if found is not None:
                        return m.bit_offset + found[0], found[1]
        return None

    def member_offset(self, struct_name: str, member: str) -> int:
        """Byte offset of `struct_name.member`; a dotted path (`a.b`) follows named sub-structs."""
        t = self.find(KIND_STRUCT, struct_name)
        bits = 0
        for part in member.split("."):
            found = self._find_member(t, part)
            if found is None:
                raise BTFError(f"struct {struct_name} has no member {member!r} in this kernel's BTF")
            bits += found[0]
            if found[1].bitfield_size or bits % 8:
                raise BTFError(f"{struct_name}.{member} is a bitfield")
            t = self._resolve(found[1].type_id)
        return bits // 8

    def struct_size(self, struct_name: str) -> int:
        return self.find(KIND_STRUCT, struct_name).size_or_type

    def enum(self, name: str) -> dict[str, int]:
        """Values of enum `name` (plain or 64-bit)."""
        for kind in (KIND_ENUM, KIND_ENUM64):
            if self.has(kind, name):
                return dict(self.find(kind, name).enum_values)
        raise BTFError(f"the kernel's BTF has no enum {name!r}")


_KIND_WORD = {KIND_STRUCT: "struct", KIND_UNION: "union", KIND_ENUM: "enum", KIND_TYPEDEF: "typedef"}


@cache
def kernel_btf(path: Path = VMLINUX_BTF) -> BTF:
    """The running kernel's BTF, parsed once per process."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise BTFError(
            f"{path} does not exist: this kernel was built without CONFIG_DEBUG_INFO_BTF, "
            "so netscope cannot learn its struct layouts"
        ) from None
    except OSError as e:
        raise BTFError(f"cannot read {path}: {e.strerror}") from None
    return BTF(blob)
