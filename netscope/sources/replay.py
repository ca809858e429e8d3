"""The replay source: samples from a recording, through the same interface as the live source.

Needs no root and no BPF: everything is recomputed from the recorded raw samples by the model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from netscope.model.filter import Filter
from netscope.model.sample import ProbeStatus, Sample
from netscope.sources.recording import Recording


class ReplaySource:
    live = False

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.info = recording.info
        self._next = 0

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """A recording has what it has: nothing to attach."""
        return ()

    def statuses(self) -> tuple[ProbeStatus, ...]:
        samples = self.recording.samples
        return samples[min(self._next, len(samples) - 1)].probes if samples else ()

    def sample(self) -> Sample | None:
        if self._next >= len(self.recording.samples):
            return None
        sample = self.recording.samples[self._next]
        self._next += 1
        return sample

    def set_flow_filter(self, flt: Filter | None) -> None:
        """Nothing to recompile: the model filters recorded flows."""

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        """A recording holds the events of the flows watched while it was made, nothing more."""

    def close(self) -> None:
        pass
