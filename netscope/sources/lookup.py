"""A cache for what user space must look up by walking /proc or /sys (the process holding a socket,
a cgroup's path): the keys known are answered at once; the unknown ones are looked up together at
most every `every_s` (a look walks every process or every cgroup); a key not asked for in `kept_s`
is forgotten (its socket closed, its cgroup removed)."""

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
        self._looked = -every_s

    def get(self, keys: Collection[K]) -> dict[K, V]:
        """The values of those of `keys` known now. A failed look finds nothing (what is counted
        must not be lost to /proc trouble)."""
        now = time.monotonic()
        unknown = [k for k in keys if k not in self._known]
        if unknown and now - self._looked >= self.every_s:
            self._looked = now
            try:
                found = self._look(unknown)
            except OSError:
                found = {}
            self._known.update((k, (v, now)) for k, v in found.items())
        for k in keys:
            if k in self._known:
                self._known[k] = (self._known[k][0], now)
        self._known = {k: seen for k, seen in self._known.items() if now - seen[1] < self.kept_s}
        return {k: self._known[k][0] for k in keys if k in self._known}
