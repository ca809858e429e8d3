"""Kernel code addresses -> `function+0xoffset`, through /proc/kallsyms (read once, as root)."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from functools import cache
from pathlib import Path

KALLSYMS = Path("/proc/kallsyms")
_TEXT = frozenset("tTwW")


class Kallsyms:
    """Sorted addresses in an array and the names in one bytes blob: a few MB for the ~100k text
    symbols, where a list of str took 28 MB of RSS for as long as netscope runs."""

    def __init__(self, lines: Iterable[str]) -> None:
        entries = []
        for line in lines:
            parts = line.split(None, 3)
            if len(parts) < 3 or parts[1] not in _TEXT:
                continue
            addr = int(parts[0], 16)
            if addr == 0:  # kptr_restrict hides addresses from this user
                continue
            name = parts[2] if len(parts) == 3 else f"{parts[2]} {parts[3].strip()}"
            entries.append((addr, name))
        entries.sort()
        self._addrs = array("Q", (a for a, _ in entries))
        self._names = "\n".join(n for _, n in entries).encode()
        self._starts = array("I", [0])
        for _, n in entries:
            self._starts.append(self._starts[-1] + len(n.encode()) + 1)
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._addrs)

    def _name(self, i: int) -> str:
        return self._names[self._starts[i] : self._starts[i + 1] - 1].decode()

    def symbolize(self, addr: int) -> str:
        """'udp_queue_rcv_one_skb+0x1a3'; a hex address when no symbol covers it."""
        cached = self._cache.get(addr)
        if cached is not None:
            return cached
        i = bisect.bisect_right(self._addrs, addr) - 1
        result = f"{self._name(i)}+{addr - self._addrs[i]:#x}" if i >= 0 else f"{addr:#x}"
        self._cache[addr] = result
        return result

    @classmethod
    def load(cls) -> Kallsyms:
        with KALLSYMS.open() as lines:
            return cls(lines)


@cache
def kernel_symbols() -> Kallsyms:
    """The process's one copy of /proc/kallsyms, read on first use (every probe that symbolizes
    shares it)."""
    return Kallsyms.load()
