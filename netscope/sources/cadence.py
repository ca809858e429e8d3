"""The one sampling loop every command runs (the TUI's sampler thread, snapshot, record, export):
a fixed cadence, so intervals stay `interval` long however long a read takes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def every(
    interval: float,
    step: Callable[[], bool],
    stop: threading.Event,
    baseline: Callable[[], object] | None = None,
) -> None:
    """Call `step` every `interval` seconds until it returns False or `stop` is set. The schedule
    starts before `baseline` (the first read, whose counts start the first interval) is taken, not
    when it returns: a slow first read (netlink, a /proc scan) must not stretch the first interval.
    A step that ran late (the machine busy) moves the schedule on, rather than making the next
    steps hurry to catch up: at most one interval is made up."""
    deadline = time.monotonic()
    if baseline is not None:
        baseline()
    while not stop.is_set():
        deadline += interval
        if stop.wait(max(deadline - time.monotonic(), 0.0)):
            return
        deadline = max(deadline, time.monotonic() - interval)
        if not step():
            return
