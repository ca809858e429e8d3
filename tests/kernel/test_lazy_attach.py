"""Lazy attach: a probe's programs are loaded and attached only while something needs it; no longer
needed, its hooks are detached at once (it costs the box nothing), and its program is kept for the
linger time, so needing it again attaches it without a compile, then freed (bpftool counts what is
really loaded, and its links what is attached)."""

from __future__ import annotations

import threading
import time

from harness.tmux import new_attached, new_programs, program_ids, programs_of, wait_for
from netscope.model.sample import ProbeState
from netscope.sources.live import LiveSource


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


def test_a_key_that_resumes_a_probe_while_the_sampler_cycles_hooks_does_not_deadlock() -> None:
    """need() (the UI thread, on a key) takes _need_lock, then _detail_lock to resume a suspended
    probe; the sampler's duty cycle must not hold _detail_lock while it waits for _need_lock (the
    TUI froze for good when both met)."""
    source = LiveSource(bpf=False)
    probes = source.probes
    probes._detail_since = 0.0  # the per-packet hooks on: the duty cycle runs

    def key() -> None:
        with probes._need_lock:
            time.sleep(0.3)  # meanwhile the sampler starts a duty cycle
            with probes._detail_lock:
                pass

    ui = threading.Thread(target=key, daemon=True)
    sampler = threading.Thread(target=probes.duty_cycle, args=(1.0,), daemon=True)
    ui.start()
    time.sleep(0.1)
    sampler.start()
    ui.join(5)
    sampler.join(5)
    source.close()
    assert not ui.is_alive() and not sampler.is_alive(), "deadlocked"
