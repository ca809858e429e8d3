from __future__ import annotations

from netscope.model.timeline import DROP_LOG_KEPT, HISTORY, Timeline
from tests.unit.samples import two_cpu_sample
from tests.unit.test_drops_model import INFO, drops_sample


def test_nothing_shown_before_the_first_sample() -> None:
    assert Timeline(INFO).shown() is None


def test_histories_are_bounded_and_totals_keep_counting() -> None:
    timeline = Timeline(INFO)
    for _ in range(HISTORY + 5):
        timeline.add(drops_sample())
    shown = timeline.shown()
    assert shown is not None
    assert len(shown.cpu_history) == HISTORY
    assert len(shown.drops_history) == HISTORY
    assert shown.drop_totals.drops == 4000 * (HISTORY + 5)
    assert shown.drops is shown.drops_history[-1]
    assert len(shown.drop_events) <= DROP_LOG_KEPT


def test_a_snapshot_does_not_change_when_more_samples_arrive() -> None:
    timeline = Timeline(INFO)
    timeline.add(two_cpu_sample())
    frozen = timeline.shown()
    timeline.add(drops_sample())
    assert frozen is not None and frozen.drops is None and len(frozen.cpu_history) == 1
    later = timeline.shown()
    assert later is not None and later.drops is not None
