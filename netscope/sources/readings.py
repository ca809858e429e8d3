"""Readings of the kernel's counters taken each interval or every few seconds, and what became of
each read: shared by the live source's readers (kernel counters, namespaces and devices)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class ReadGaps:
    """When each of the kernel's counter sources was last read well. A read that fails is left out
    of its interval (marked: Sample.read_failed) and the reading before kept, so the next good
    read's delta spans back to it (Sample.spans): its rates divide by that, not by one interval."""

    def __init__(self) -> None:
        self._good_at: dict[str, float] = {}
        self._pending: set[str] = set()  # failed since their last good read
        self.spans: dict[str, float] = {}  # this interval's
        self.failed: set[str] = set()  # this interval's

    def begin(self) -> None:
        """A new interval's reads start."""
        self.spans, self.failed = {}, set()

    def good(self, source: str, at: float) -> None:
        if source in self._pending and source in self._good_at:
            self.spans[source] = at - self._good_at[source]
        self._pending.discard(source)
        self._good_at[source] = at

    def bad(self, source: str) -> None:
        self._pending.add(source)
        self.failed.add(source)


class Cumulative(Generic[T]):
    """A reading of cumulative counters, taken every interval: `step` gives the previous reading
    and this one. A reading that fails (a CPU or device going away mid-read) is empty, and the
    previous one is kept for the next interval: nothing is counted twice or made up (`gaps` says
    how long the next delta spans)."""

    def __init__(self, read: Callable[[], dict[Any, T]], source: str, gaps: ReadGaps) -> None:
        self._read = read
        self._source, self._gaps = source, gaps
        self._last: dict[Any, T] = {}
        self.step()

    def step(self) -> tuple[dict[Any, T], dict[Any, T]]:
        at = time.monotonic()
        try:
            now = self._read()
        except (OSError, ValueError):
            self._gaps.bad(self._source)
            return self._last, {}
        self._gaps.good(self._source, at)
        prev, self._last = self._last, now
        return prev, now


class Every(Generic[K, T]):
    """A reading too dear for every interval, `read(of)`: taken again once `seconds` have passed,
    or at once when what it reads (`of`) changed."""

    def __init__(self, seconds: float, read: Callable[[K], T]) -> None:
        self.seconds = seconds
        self._read = read
        self._taken: tuple[float, K, T] | None = None

    def get(self, of: K) -> T:
        now = time.monotonic()
        if self._taken is None or now - self._taken[0] >= self.seconds or of != self._taken[1]:
            self._taken = (now, of, self._read(of))
        return self._taken[2]
