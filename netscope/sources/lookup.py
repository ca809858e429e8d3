"""A cache for what user space must look up by walking /proc or /sys (the process holding a socket,
a cgroup's path): the keys known are answered at once; a key never looked for is looked for at
once, so a socket first seen now is not starved behind another's look; those looked for and not
found are looked for again at most every `every_s` (a look walks every process or every cgroup);
a key not asked for in `kept_s` is forgotten (its socket closed, its cgroup removed)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LookupCache(Generic[K, V]):
    def __init__(self, look: Callable[[Collection[K]], dict[K, V]], every_s: float, kept_s: float) -> None:
        self._look = look
        self.every_s = every_s
        self.kept_s = kept_s
        self._known: dict[K, tuple[V, float]] = {}  # key -> its value, when last asked for
        self._missed: dict[K, tuple[float, float]] = {}  # key not found -> when looked for, asked for

    def get(self, keys: Collection[K]) -> dict[K, V]:
        """The values of those of `keys` known now. A failed look finds nothing (what is counted
        must not be lost to /proc trouble)."""
        now = time.monotonic()
        unknown = [k for k in keys if k not in self._known]
        due = [k for k in unknown if k not in self._missed or now - self._missed[k][0] >= self.every_s]
        if due:
            try:
                found = self._look(due)
            except OSError:
                found = {}
            self._known.update((k, (v, now)) for k, v in found.items())
            self._missed.update((k, (now, now)) for k in due if k not in found)
        for k in keys:
            if k in self._known:
                self._known[k] = (self._known[k][0], now)
                self._missed.pop(k, None)
            elif k in self._missed:
                self._missed[k] = (self._missed[k][0], now)
        self._known = {k: seen for k, seen in self._known.items() if now - seen[1] < self.kept_s}
        self._missed = {k: at for k, at in self._missed.items() if now - at[1] < self.kept_s}
        return {k: self._known[k][0] for k in keys if k in self._known}
