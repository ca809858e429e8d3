"""When a probe's counts first stand for a whole interval: from the one after it went live, by its
own clock, also when it went live before the rest of the group compiled with it (the drop storm
test once lost a whole interval of drops: the group's start time was taken for all of them once
the last had attached, after the first had been polled)."""

from __future__ import annotations

from typing import Any

from netscope.model.sampling import Rate, RateController
from netscope.probes.base import ProbeOptions, Runs
from netscope.sources.probe_set import ProbeSet


class LiveDrops:
    """A probe as the set polls it: live since `live_at`, with counts."""

    name = "drops"
    sample_field = "drops"
    per_packet: tuple[str, ...] = ()
    runs_are_softnet_processed = False
    rate = Rate()
    runs = Runs()

    def __init__(self, live_at: float) -> None:
        self.live_at = live_at

    def poll(self) -> Any:
        return "counts"


def probe_set() -> ProbeSet:
    return ProbeSet((0,), ProbeOptions(0, 1000, None), None, RateController(), 10.0, lambda: None)


def test_an_interval_counts_from_the_probes_own_live_time() -> None:
    probes = probe_set()
    went_live = 100.0
    assert probes._poll(LiveDrops(went_live), went_live - 0.5, True, 0) is None  # live mid-interval
    assert probes._poll(LiveDrops(went_live), went_live + 0.5, True, 0) == "counts"
