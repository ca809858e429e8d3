"""A small reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`).

Why: BCC compiles against whatever headers exist, and those may be another kernel's (here Debian's
6.1 headers on a 6.18 kernel), so struct layouts from headers are wrong. The running kernel's BTF is
the truth for struct member offsets and enum values; probes pass them to the C side as -D defines.
No I/O beyond reading the blob; parsing is pure and unit-tested with hand-built blobs.
"""

from __future__ import annotations

import struct
from array import array
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
    vlen: int = 0  # members, enum values or parameters


class BTF:
    """Types of one BTF blob, by id (id 0 is `void`).

    One pass records where each type starts, its kind and its name offset (compact arrays); a type's
    members are decoded only when asked for. The kernel's blob has ~126k types: decoding them all
    would cost ~60 MB and most of a second, for the handful of structs a probe needs.
    """

    _strings: bytes

    def __init__(self, blob: bytes, base: BTF | None = None) -> None:
        """`base`: for a module's split BTF (/sys/kernel/btf/<module>), the kernel's BTF, whose
        strings come first in the offset space. Only the module's own enums are read from it."""
        self._base_strings = base._strings if base is not None else b""
        if len(blob) < 24:
            raise BTFError("BTF blob too short")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != BTF_MAGIC:
            raise BTFError(f"bad BTF magic {magic:#x}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        self._data = blob[hdr_len + type_off : hdr_len + type_off + type_len]
        self._strings = blob[hdr_len + str_off : hdr_len + str_off + str_len]
        self._pos = array("I", [0])  # index 0: void
        self._kind = array("B", [0])
        self._name = array("I", [0])
        self._index()

    def _index(self) -> None:
        data, pos, unpack = self._data, 0, struct.unpack_from
        while pos < len(data):
            name_off, info = unpack("<II", data, pos)
            kind = (info >> 24) & 0x1F
            extra = _EXTRA.get(kind)
            if extra is None:
                raise BTFError(f"unknown BTF kind {kind} at type {len(self._pos)}")
            self._pos.append(pos)
            self._kind.append(kind)
            self._name.append(name_off)
            pos += 12 + extra[0] + extra[1] * (info & 0xFFFF)

    def _string(self, off: int) -> str:
        strings = self._strings
        if self._base_strings:
            if off < len(self._base_strings):
                strings = self._base_strings
            else:
                off -= len(self._base_strings)
        end = strings.find(b"\0", off)
        return strings[off:end].decode("ascii", "replace")

    def _name_offsets(self, name: str) -> set[int]:
        """Offsets in the string section where `name` is stored (it may be stored more than once)."""
        needle, found, start = name.encode() + b"\0", set(), 0
        while (hit := self._strings.find(needle, start)) >= 0:
            if hit == 0 or self._strings[hit - 1] == 0:
                found.add(hit)
            start = hit + 1
        return found

    def _type_id(self, kind: int, name: str) -> int | None:
        offsets = self._name_offsets(name)
        if not offsets:
            return None
        for type_id, (k, n) in enumerate(zip(self._kind, self._name, strict=True)):
            if k == kind and n in offsets:
                return type_id
        return None

    def type(self, type_id: int) -> BTFType:
        """Decode one type."""
        if type_id == 0:
            return BTFType(0, "void", 0)
        pos = self._pos[type_id]
        name_off, info, size_or_type = struct.unpack_from("<III", self._data, pos)
        kind, vlen, kind_flag = self._kind[type_id], info & 0xFFFF, bool(info >> 31)
        body = pos + 12 + _EXTRA[kind][0]
        members: tuple[Member, ...] = ()
        enum_values: tuple[tuple[str, int], ...] = ()
        if kind in (KIND_STRUCT, KIND_UNION):
            mlist = []
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", self._data, body + 12 * i)
                # kind_flag: the offset word holds the bitfield size in its high byte.
                bit_off, bf_size = (m_off & 0xFFFFFF, m_off >> 24) if kind_flag else (m_off, 0)
                mlist.append(Member(self._string(m_name), m_type, bit_off, bf_size))
            members = tuple(mlist)
        elif kind == KIND_ENUM:
            fmt = "<Ii" if kind_flag else "<II"  # kind_flag: signed values
            enum_values = tuple(
                (self._string(e_name), e_val)
                for e_name, e_val in (struct.unpack_from(fmt, self._data, body + 8 * i) for i in range(vlen))
            )
        elif kind == KIND_ENUM64:
            enum_values = tuple(
                (self._string(e_name), (hi << 32) | lo)
                for e_name, lo, hi in (
                    struct.unpack_from("<III", self._data, body + 12 * i) for i in range(vlen)
                )
            )
        return BTFType(kind, self._string(name_off), size_or_type, members, enum_values, vlen)

    def find(self, kind: int, name: str) -> BTFType:
        type_id = self._type_id(kind, name)
        if type_id is None:
            raise BTFError(f"the kernel's BTF has no {_KIND_WORD.get(kind, 'type')} {name!r}")
        return self.type(type_id)

    def has(self, kind: int, name: str) -> bool:
        return self._type_id(kind, name) is not None

    def tracepoint_args(self, name: str) -> int | None:
        """How many arguments raw tracepoint `name` passes (its `btf_trace_<name>` prototype less the
        leading context pointer), or None when this kernel's BTF does not describe it."""
        type_id = self._type_id(KIND_TYPEDEF, f"btf_trace_{name}")
        if type_id is None:
            return None
        t = self.type(type_id)
        while t.kind in (KIND_TYPEDEF, KIND_PTR, KIND_CONST, KIND_VOLATILE):
            t = self.type(t.size_or_type)
        if t.kind != KIND_FUNC_PROTO:
            return None
        return t.vlen - 1

    def enums_named(self, fragment: str) -> dict[str, dict[str, int]]:
        """Every enum whose name contains `fragment`, by name."""
        out = {}
        for type_id, k in enumerate(self._kind):
            if k in (KIND_ENUM, KIND_ENUM64) and fragment in (name := self._string(self._name[type_id])):
                out[name] = dict(self.type(type_id).enum_values)
        return out

    def _resolve(self, type_id: int) -> BTFType:
        """Skip typedefs and qualifiers to the underlying type."""
        t = self.type(type_id)
        while t.kind in (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG):
            t = self.type(t.size_or_type)
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

    def member_size(self, struct_name: str, member: str) -> int:
        """Byte size of a scalar or pointer member (8 for pointers on 64-bit kernels)."""
        found = self._find_member(self.find(KIND_STRUCT, struct_name), member)
        if found is None:
            raise BTFError(f"struct {struct_name} has no member {member!r} in this kernel's BTF")
        t = self._resolve(found[1].type_id)
        return 8 if t.kind == KIND_PTR else t.size_or_type

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
            "so netscope cannot learn its struct layouts. Boot a kernel built with "
            "CONFIG_DEBUG_INFO_BTF=y (the distribution kernels of Debian 11+, Ubuntu 20.10+, "
            "Fedora 31+ and RHEL 8.2+ are); the interrupt probe and the /proc counters work without it"
        ) from None
    except OSError as e:
        raise BTFError(f"cannot read {path}: {e.strerror}") from None
    return BTF(blob)
