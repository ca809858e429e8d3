"""Lazy attach: a probe's programs are loaded only while something needs it, and detached once it
has not been needed for the linger time (bpftool counts what is really loaded)."""

from __future__ import annotations

import time

from netscope.model.sample import ProbeState
from netscope.sources.live import LiveSource
from tests.kernel.tmux import new_programs, program_ids, programs_of, wait_for


def states(source: LiveSource) -> dict[str, ProbeState]:
    return {s.name: s.state for s in source.statuses()}


def test_attach_on_need_detach_after_linger() -> None:
    before = program_ids()
    source = LiveSource(linger_s=0.5)
    try:
        assert set(states(source).values()) == {ProbeState.IDLE}
        for start in source.need({"napi"}):
            start()
        assert new_programs(before) == programs_of("napi")
        assert states(source)["napi"] == ProbeState.LIVE
        assert {n for n, s in states(source).items() if s != ProbeState.IDLE} == {"napi"}
        assert source.need({"napi"}) == ()  # attached already: nothing more to start
        source.need(set())
        source.sample()  # within the linger time it stays
        assert new_programs(before) == programs_of("napi")
        time.sleep(0.6)
        source.sample()
        # The kernel frees a detached program after an RCU grace period.
        wait_for(lambda: new_programs(before) == 0, 2, "the napi program to be freed")
        assert states(source)["napi"] == ProbeState.IDLE
        for start in source.need({"napi"}):  # needed again: attached anew
            start()
        assert states(source)["napi"] == ProbeState.LIVE
        assert new_programs(before) == programs_of("napi")
    finally:
        source.close()
    wait_for(lambda: new_programs(before) == 0, 2, "every program to be freed")
