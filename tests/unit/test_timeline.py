from __future__ import annotations

import tracemalloc
from dataclasses import replace
from pathlib import Path

from netscope.model.sample import DropEvent, FlowCount, FlowsSample, HostInfo
from netscope.model.timeline import DROP_LOG_KEPT, HISTORY, Timeline, past_view
from netscope.sources.recording import read_recording
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


def test_history_keeps_rates_not_each_intervals_logged_drops() -> None:
    """The drop log lives once, bounded; the views kept for trends carry no events."""
    timeline = Timeline(INFO)
    drops = drops_sample().drops
    assert drops is not None
    event = DropEvent(
        0.0, 1, 3, "NO_SOCKET", "", "f+0x1", 0x0800, "v", 1, 17, "10.200.0.1", "10.200.0.2", 4, 9
    )
    logging = replace(drops_sample(), drops=replace(drops, events=(event,) * 500))
    for _ in range(HISTORY + 10):
        timeline.add(logging)
    shown = timeline.shown()
    assert shown is not None and len(shown.drops_history) == HISTORY
    assert all(view.events == () for view in shown.drops_history)
    assert 0 < len(shown.drop_events) <= DROP_LOG_KEPT


def test_a_view_kept_to_look_back_at_holds_its_busiest_flows_and_sums_the_rest() -> None:
    flows = tuple(
        FlowCount(1, 4, 17, "10.0.0.1", 1000 + i, "10.0.0.2", 9, 10 * (i + 1), 640 * (i + 1), (0,), (0,),
                  (("NO_SOCKET", 1),) if i < 3 else (), 0.0, 1.0)
        for i in range(8)
    )  # fmt: skip
    info = HostInfo("box", "6.18", (0,), 0.0)
    timeline = Timeline(info)
    timeline.add(replace(two_cpu_sample(), flows=FlowsSample(flows, 0, "")))
    view = timeline.shown()
    assert view is not None and view.flows is not None and len(view.flows.rows) == 8
    kept = past_view(view, top=3)
    assert kept.flows is not None and kept.latest.flows is not None
    assert [r.flow.sport for r in kept.flows.rows] == [1007, 1006, 1005]  # the busiest
    assert kept.flows.flow_count == 8  # the rest summed, not lost
    assert kept.flows.others.rx_packets == 10 + 20 + 30 + 40 + 50
    assert dict(kept.flows.others.drops) == {"NO_SOCKET": 3}
    assert all(set(rows) <= set(kept.flows.rows) for rows in kept.flows.orders.values())
    assert len(kept.latest.flows.flows) == 3 and kept.latest.flows.rest.flows == 5
    assert kept.cpu_history == view.cpu_history and kept.drops == view.drops  # the rest as it was
    assert past_view(kept, top=3) == kept


def test_ten_minutes_of_views_kept_to_look_back_at_stay_within_50_mb() -> None:
    """600 views of the recorded fixture (a flood with three drop causes, 25 flows) as the TUI keeps
    them: about 29 MB measured; a view that kept every logged drop took 0.5 MB."""
    recording = read_recording(Path(__file__).parent.parent / "fixtures" / "veth-traffic.nsrec")
    timeline = Timeline(recording.info)
    samples = [replace(recording.samples[i % len(recording.samples)], ts=1000.0 + i) for i in range(840)]
    for sample in samples[:240]:  # the timeline's own windows full first
        timeline.add(sample)
    tracemalloc.start()
    try:
        kept = []
        for sample in samples[240:]:
            timeline.add(sample)
            view = timeline.shown()
            assert view is not None
            kept.append(past_view(view))
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == 600
    assert used < 50e6, f"{used / 1e6:.1f} MB"
