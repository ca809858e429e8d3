"""The one sampling loop: a baseline first, then a step per interval until the step says stop or
the stop event is set."""

from __future__ import annotations

import threading

from netscope.sources.cadence import every


def test_baseline_then_steps_until_the_step_says_stop() -> None:
    calls: list[str] = []

    def step() -> bool:
        calls.append("step")
        return len(calls) < 4

    every(0.001, step, threading.Event(), baseline=lambda: calls.append("baseline"))
    assert calls == ["baseline", "step", "step", "step"]


def test_a_set_stop_ends_the_wait_at_once() -> None:
    stop = threading.Event()
    calls: list[str] = []

    def step() -> bool:
        calls.append("step")
        stop.set()  # e.g. the TUI quitting while an interval was read
        return True

    loop = threading.Thread(target=every, args=(0.001, step, stop))
    loop.start()
    loop.join(5)
    assert not loop.is_alive() and calls == ["step"]
    every(3600.0, step, stop)  # already set: returns without waiting an hour, and no step
    assert calls == ["step"]
