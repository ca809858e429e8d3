"""The replay source: samples from a recording, through the same interface as the live source.

Needs no root and no BPF: everything is recomputed from the recorded raw samples by the model.
Time travel: the position can be moved; the app rebuilds its timeline from the samples before it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

from netscope.model.filter import Filter
from netscope.model.sample import ProbeStatus, Sample
from netscope.sources.recording import Recording

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class ReplaySource:
    live = False

    def __init__(self, recording: Recording) -> None:
        self.replay = self  # it can seek
        self.recording = recording
        self.info = recording.info
        self.samples = recording.samples
        self.playing = True
        self.speed = 1.0
        self._next = 0
        self._lock = threading.Lock()

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """A recording has what it has: nothing to attach."""
        return ()

    def statuses(self) -> tuple[ProbeStatus, ...]:
        samples = self.samples
        return samples[min(self._next, len(samples) - 1)].probes if samples else ()

    def sample(self) -> Sample | None:
        return item[1] if (item := self.next()) is not None else None

    def next(self) -> tuple[int, Sample] | None:
        """The next sample and its index, or None at the end."""
        with self._lock:
            if self._next >= len(self.samples):
                return None
            index = self._next
            self._next += 1
            return index, self.samples[index]

    def seek(self, index: int) -> tuple[Sample, ...]:
        """Move so that samples[index] is the last one seen; returns every sample up to it, for
        the app to rebuild its views from."""
        with self._lock:
            index = max(0, min(index, len(self.samples) - 1))
            self._next = index + 1
            return self.samples[: index + 1]

    def index_at(self, ts: float) -> int:
        """The first sample taken at or after `ts` (the last one if all are earlier): a clock time
        names the sample whose own time shows that second."""
        return next((i for i, s in enumerate(self.samples) if s.ts >= ts), len(self.samples) - 1)

    def step_speed(self, step: int) -> None:
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + step))]

    def set_flow_filter(self, flt: Filter | None) -> None:
        """Nothing to recompile: the model filters recorded flows."""

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        """A recording holds the events of the flows watched while it was made, nothing more."""

    def describe(self) -> dict[str, Any]:
        return self.recording.machine

    def close(self) -> None:
        pass
