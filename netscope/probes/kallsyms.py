"""Kernel code addresses -> `function+0xoffset`, through /proc/kallsyms (read once, as root)."""

from __future__ import annotations

import bisect
from array import array
from pathlib import Path

KALLSYMS = Path("/proc/kallsyms")
_TEXT = frozenset("tTwW")


class Kallsyms:
    def __init__(self, text: str) -> None:
        entries = []
        for line in text.splitlines():
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
        self._names = [n for _, n in entries]
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._addrs)

    def symbolize(self, addr: int) -> str:
        """'udp_queue_rcv_one_skb+0x1a3'; a hex address when no symbol covers it."""
        cached = self._cache.get(addr)
        if cached is not None:
            return cached
        i = bisect.bisect_right(self._addrs, addr) - 1
        result = f"{self._names[i]}+{addr - self._addrs[i]:#x}" if i >= 0 else f"{addr:#x}"
        self._cache[addr] = result
        return result

    @classmethod
    def load(cls) -> Kallsyms:
        return cls(KALLSYMS.read_text())
