"""A drop storm (as fast as the machine makes it: 200k drops/s on an idle 2-CPU VM) and a packet
flood to a reader, together for 20 s, with the TUI running on the live source: counts stay exact
against Udp NoPorts, the log stays within its limit and what it did not log (or lost) is counted and
shown, keys are answered with a new frame within 200 ms, and memory stays flat. NETSCOPE_STORM_S
shortens it for a quick look."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from textual import events
from textual.pilot import Pilot
from textual.widgets import Static, TabbedContent

from harness.netns import flood_result, flood_udp, netns_inode, snmp, udp_sink, veth_pair
from netscope.app import NetscopeApp, make_app
from netscope.model.sample import Sample
from netscope.sources.live import LiveSource

SECONDS = float(os.environ.get("NETSCOPE_STORM_S", "20"))
LOG_RATE = 1000
CLOSED_PORT, OPEN_PORT = 9, 5001
NO_SOCKET = 3  # SKB_DROP_REASON_NO_SOCKET
# The flood to the reader runs a little below the storm's priority, so that on a 2-CPU machine the
# storm still reaches 200k drops/s beside it.
FLOOD_NICE = 5
# The storm is as fast as the machine makes it: 200k+ drops/s on these VMs when idle, 130-170k
# while their host is busy (CI failed at 133k, then at 154k, against fixed floors). The test checks
# netscope under a storm, not how fast the machine is: it fails only when the rate is too low to
# mean a storm, twenty times what the drop log may log (so most drops are not logged).
STORM_MIN_PER_S = 20 * LOG_RATE
# Keys an operator presses while looking around: pane switches (the dearest: a whole new screen)
# and pause/resume.
KEYS = ("r", "c", "d", "p", "p", "l", "t", "h")
PANES = {"h": "home", "r": "rings", "c": "cpus", "d": "drops", "l": "latency", "t": "flows"}


@dataclass(frozen=True)
class Counted:
    """What the test checks of one sample (kept instead of the sample, whose drop log would make
    the test's own memory grow)."""

    ts: float
    interval_s: float
    no_socket_in_ns: int  # NO_SOCKET drops counted in the receiver's namespace
    drops: int
    logged: int
    suppressed: int
    lost: int
    unbucketed: int


class CountingLiveSource(LiveSource):
    """The live source, keeping the counts of every sample with drops it hands the app."""

    def __init__(self, netns: int) -> None:
        super().__init__(drop_log_rate=LOG_RATE)
        self.netns = netns
        self.counted: list[Counted] = []

    def sample(self) -> Sample:
        s = super().sample()
        if (d := s.drops) is not None:
            in_ns = sum(sum(b.per_cpu) for b in d.buckets if b.netns == self.netns and b.reason == NO_SOCKET)
            drops = sum(sum(r.per_cpu) for r in d.reasons)
            self.counted.append(
                Counted(s.ts, s.interval_s, in_ns, drops, d.logged, d.suppressed, d.lost, d.unbucketed)
            )
        return s


@dataclass(frozen=True)
class Frame:
    at: float  # time.monotonic() when the app composed it
    pane: str
    paused: bool


class Frames:
    """Every frame the app composed, with what it showed: a key is answered by the first frame
    that shows its effect."""

    def __init__(self, app: NetscopeApp) -> None:
        self.shown: list[Frame] = []
        display = app._display
        tabs = app.query_one(TabbedContent)

        def timed(screen, renderable):  # type: ignore[no-untyped-def]
            self.shown.append(Frame(time.monotonic(), tabs.active, app.paused))
            return display(screen, renderable)

        app._display = timed  # type: ignore[method-assign]


async def answer_time(app: NetscopeApp, frames: Frames, key: str, answered: Callable[[Frame], bool]) -> float:
    """Seconds from a key reaching the app to the first frame that shows its effect."""
    seen = len(frames.shown)
    event = events.Key(key, key)
    event.set_sender(app)
    sent = time.monotonic()
    assert app._driver is not None
    app._driver.send_message(event)
    while True:
        answer = next((f for f in frames.shown[seen:] if answered(f)), None)
        if answer is not None:
            return answer.at - sent
        assert time.monotonic() - sent < 5, f"no frame answered {key!r} in 5 s"
        await asyncio.sleep(0.002)


async def wait_until(pilot: Pilot[int], predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def key_answered(app: NetscopeApp, key: str) -> Callable[[Frame], bool]:
    if key in PANES:
        return lambda frame: frame.pane == PANES[key]
    was = app.paused
    return lambda frame: frame.paused != was


async def test_drop_storm_and_flood_exact_counts_bounded_log_responsive_ui() -> None:
    with veth_pair(subnet=79) as pair, udp_sink(pair, OPEN_PORT, SECONDS + 30, FLOOD_NICE):
        source = CountingLiveSource(netns_inode(pair.receiver_ns))
        app = make_app(source, interval=1.0)
        rss = psutil.Process().memory_info
        async with app.run_test(size=(120, 40)) as pilot:
            frames = Frames(app)
            # A probe's first interval after it goes live is its baseline: start the storm once
            # a whole interval has been counted.
            await wait_until(pilot, lambda: bool(source.counted), 30, "the drops probe's first full interval")
            before = snmp(pair.receiver_ns)["NoPorts"]
            first = len(source.counted)
            storm = [flood_udp(pair, SECONDS, port=CLOSED_PORT) for _ in range(2)]
            flood = flood_udp(pair, SECONDS, port=OPEN_PORT, nice=FLOOD_NICE)
            started = time.monotonic()
            answers: list[tuple[str, float]] = []
            rss_early = 0
            while time.monotonic() - started < SECONDS:
                key = KEYS[len(answers) % len(KEYS)]
                answers.append((key, await answer_time(app, frames, key, key_answered(app, key))))
                if not rss_early and time.monotonic() - started > 10:
                    rss_early = rss().rss
                await asyncio.sleep(0.7)  # an operator's pace
            results = [flood_result(f) for f in storm]
            delivered, _ = flood_result(flood)
            # The storm's rate over the senders' own clocks: the last key may overshoot SECONDS.
            elapsed = max(seconds for _, seconds in results)
            # Let the last interval close after the storm, then read the kernel's counter.
            await pilot.pause(0.3)
            after = snmp(pair.receiver_ns)["NoPorts"]
            n = len(source.counted)
            await wait_until(pilot, lambda: len(source.counted) >= n + 2, 5, "two more samples")
            rss_late = rss().rss
            await pilot.press("d", "p")  # freeze the Drops pane on the newest sample
            assert app.latest is not None
            shown = [c for c in source.counted if c.ts <= app.latest.ts]
            summary = str(app.query_one("#drops-summary", Static).render())
            await pilot.press("q")

    assert f"{sum(c.lost for c in shown):,} lost" in summary, summary
    assert f"{sum(c.suppressed for c in shown):,} not logged" in summary, summary
    during = source.counted[first:]
    ours = sum(c.no_socket_in_ns for c in during)
    kernel = after - before
    times = sorted(t for _, t in answers)
    p90 = times[int(len(times) * 0.9)]
    print(
        f"storm: {kernel / elapsed:.0f} drops/s, ours {ours} kernel {kernel}, flood delivered "
        f"{delivered / elapsed:.0f}/s; keys median {statistics.median(times):.3f} p90 {p90:.3f} "
        f"max {times[-1]:.3f} s ({len(times)} keys; slowest {sorted(answers, key=lambda a: -a[1])[:4]}); "
        f"rss {rss_early >> 20} -> {rss_late >> 20} MiB; "
        f"logged {[c.logged for c in during]}, lost {sum(c.lost for c in during)}"
    )
    rate = kernel / elapsed
    assert rate >= STORM_MIN_PER_S, f"the storm reached only {rate:.0f} drops/s: too few to mean a storm"
    assert delivered > 0, "the flood reached its reader"
    assert ours == kernel
    for c in during:
        assert c.unbucketed == 0
        # Within its limit (a window boundary race may add a handful); a single reason may use 80%.
        assert c.logged <= LOG_RATE * c.interval_s * 1.05 + 20
    busy = [c for c in during if c.drops > 0.5 * rate * c.interval_s]  # the storm's, not its edges
    assert len(busy) >= SECONDS - 2
    # Intervals wholly inside the storm: the log runs at its limit (one reason may take 80% of
    # it). Events are counted when read, so one interval's count leans on the next's.
    inside = busy[1:-1]
    log_rate = sum(c.logged for c in inside) / sum(c.interval_s for c in inside)
    assert 0.7 * LOG_RATE <= log_rate <= 1.01 * LOG_RATE, log_rate
    assert all(c.logged > 0 and c.suppressed > 0 for c in inside)
    # Each drop is counted by reason, then logged, suppressed or lost in the same program run: the
    # counters read at the first interval's start may have caught one run per CPU between the two.
    accounted = sum(c.logged + c.suppressed + c.lost for c in during) - sum(c.drops for c in during)
    assert abs(accounted) <= (os.cpu_count() or 1), accounted
    # Every key is answered with a new frame within 200 ms (measured here: median 35-37 ms,
    # max 103-131 ms in three runs), while the three flood processes and the kernel's packet work keep
    # both CPUs busy.
    assert statistics.median(times) <= 0.1, answers
    assert times[-1] <= 0.2, answers
    assert rss_late - rss_early < 20 * 1024 * 1024, (rss_early, rss_late)
