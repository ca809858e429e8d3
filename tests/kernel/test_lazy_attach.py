"""Lazy attach: a probe's programs are loaded and attached only while something needs it; no longer
needed, its hooks are detached at once (it costs the box nothing), and its program is kept for the
linger time, so needing it again attaches it without a compile, then freed (bpftool counts what is
really loaded, and its links what is attached)."""

from __future__ import annotations

import time

from netscope.model.sample import ProbeState
from netscope.sources.live import LiveSource
from tests.kernel.tmux import new_attached, new_programs, program_ids, programs_of, wait_for


def states(source: LiveSource) -> dict[str, ProbeState]:
    return {s.name: s.state for s in source.statuses()}


def test_attach_on_need_detach_at_once_free_after_linger() -> None:
    before = program_ids()
    source = LiveSource(linger_s=1.0)
    try:
        assert set(states(source).values()) == {ProbeState.IDLE}
        for start in source.need({"napi"}):
            start()
        assert new_programs(before) == new_attached(before) == programs_of("napi")
        assert states(source)["napi"] == ProbeState.LIVE
        assert {n for n, s in states(source).items() if s != ProbeState.IDLE} == {"napi"}
        assert source.need({"napi"}) == ()  # attached already: nothing more to start
        source.need(set())
        # Not needed: detached at once, and kept loaded within the linger time.
        assert new_attached(before) == 0 and new_programs(before) == programs_of("napi")
        assert states(source)["napi"] == ProbeState.IDLE
        assert source.sample().napi is None
        # Needed again: attached again without a compile (no starter), counting from the next interval.
        started = time.monotonic()
        assert source.need({"napi"}) == ()
        assert time.monotonic() - started < 0.2
        assert new_attached(before) == programs_of("napi") and states(source)["napi"] == ProbeState.LIVE
        assert source.sample().napi is None  # it was detached for part of this interval
        assert source.sample().napi is not None
        source.need(set())
        time.sleep(1.1)
        source.sample()
        # The kernel frees a detached program after an RCU grace period.
        wait_for(lambda: new_programs(before) == 0, 2, "the napi program to be freed")
        assert states(source)["napi"] == ProbeState.IDLE
        for start in source.need({"napi"}):  # needed again: compiled and attached anew
            start()
        assert states(source)["napi"] == ProbeState.LIVE
        assert new_attached(before) == programs_of("napi")
    finally:
        source.close()
    wait_for(lambda: new_programs(before) == 0, 2, "every program to be freed")
