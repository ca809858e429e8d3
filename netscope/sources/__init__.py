"""Sources of samples: live (probes + /proc) or replay (a recording), behind one interface."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from netscope.model.filter import Filter
from netscope.model.sample import HostInfo, ProbeStatus, Sample


class Source(Protocol):
    info: HostInfo
    live: bool

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
