"""Sources of samples: live (probes + /proc) or replay (a recording), behind one interface."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from netscope.model.filter import Filter
from netscope.model.sample import HostInfo, ProbeStatus, Sample


class Replay(Protocol):
    """A source that can seek (a recording): time travel through its samples."""

    samples: tuple[Sample, ...]
    playing: bool
    speed: float

    def next(self) -> tuple[int, Sample] | None:
        """The next sample and its index, or None at the end."""

    def seek(self, index: int) -> tuple[Sample, ...]:
        """Move so that samples[index] is the last one seen; every sample up to it."""

    def index_at(self, ts: float) -> int:
        """The first sample taken at or after `ts`."""

    def step_speed(self, step: int) -> None:
        """Play faster (step > 0) or slower."""


class Source(Protocol):
    """Live or recorded samples through one interface. What differs is a capability, not a type
    to ask about: `live` (samples of now: recording possible, intervals that may stretch) and
    `replay` (seeking, None when the source cannot seek)."""

    info: HostInfo
    live: bool

    @property
    def replay(self) -> Replay | None:
        """Its time-travel controls when it can seek (a recording); None when it cannot (live)."""

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        """The probes (by name) the view on screen needs now. Returns one blocking call per probe
        to bring up (live: headers, compile, attach); the others may be detached."""

    def statuses(self) -> tuple[ProbeStatus, ...]:
        """Each probe's state, for panes that show progress while starting."""

    def sample(self) -> Sample | None:
        """The next sample (live: the interval since the previous call); None when exhausted."""

    def set_flow_filter(self, flt: Filter | None) -> None:
        """Apply a new flow filter (live: recompile the flows program; may block)."""

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        """Stream this flow's packets one by one (netns, proto, src, sport, dst, dport), or stop."""

    def describe(self) -> dict[str, Any]:
        """The machine, for a recording's header (drop-reason names, devices and rings)."""

    def close(self) -> None:
        """Release everything (live: detach every BPF program)."""
