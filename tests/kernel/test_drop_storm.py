"""A drop storm (>=200k drops/s for 5 s) with the TUI running on the live source: counts stay exact
against Udp NoPorts, the log stays within its limit and counts what it did not log, the UI answers
keys, and memory stays flat."""

from __future__ import annotations

import statistics
import time

import psutil
from textual.pilot import Pilot

from netscope.app import make_app
from netscope.model.sample import Sample
from netscope.sources.live import LiveSource
from tests.kernel.netns import flood_result, flood_udp, netns_inode, snmp, veth_pair

SECONDS = 5.0
LOG_RATE = 1000


class RecordingLiveSource(LiveSource):
    """The live source, keeping every sample it hands the app."""

    def __init__(self) -> None:
        super().__init__(drop_log_rate=LOG_RATE)
        self.samples: list[Sample] = []

    def sample(self) -> Sample:
        s = super().sample()
        self.samples.append(s)
        return s


async def wait_until(pilot: Pilot[int], predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def test_drop_storm_exact_counts_bounded_log_responsive_ui() -> None:
    with veth_pair(subnet=79) as pair:
        nsb = netns_inode(pair.receiver_ns)
        source = RecordingLiveSource()
        app = make_app(source, interval=1.0)
        rss = psutil.Process().memory_info
        async with app.run_test(size=(120, 40)) as pilot:
            # A probe's first interval after it goes live is its baseline: start the storm once
            # a whole interval has been counted.
            await wait_until(
                pilot,
                lambda: bool(source.samples) and source.samples[-1].drops is not None,
                30,
                "the drops probe's first full interval",
            )
            await pilot.press("d")
            before = snmp(pair.receiver_ns)["NoPorts"]
            first_sample = len(source.samples)
            floods = [flood_udp(pair, SECONDS, port=9) for _ in range(2)]
            started = time.monotonic()
            key_latency = []
            rss_early = 0
            while time.monotonic() - started < SECONDS:
                t0 = time.monotonic()
                await pilot.press("p")
                key_latency.append(time.monotonic() - t0)
                if not rss_early and time.monotonic() - started > 1.5:
                    rss_early = rss().rss
                await pilot.pause(0.25)
            results = [flood_result(f) for f in floods]
            sent = sum(n for n, _ in results)
            # The storm's rate over the senders' own clocks: the key presses above overshoot SECONDS.
            elapsed = max(seconds for _, seconds in results)
            # Let the last interval close after the storm, then read the kernel's counter.
            await pilot.pause(0.3)
            after = snmp(pair.receiver_ns)["NoPorts"]
            n = len(source.samples)
            await wait_until(pilot, lambda: len(source.samples) >= n + 2, 5, "two more samples")
            rss_late = rss().rss
            await pilot.press("q")

    storm = [s for s in source.samples[first_sample:] if s.drops is not None]
    ours = sum(
        sum(b.per_cpu)
        for s in storm
        for b in s.drops.buckets  # type: ignore[union-attr]
        if b.netns == nsb and b.reason == 3
    )
    kernel = after - before
    assert kernel / elapsed >= 200_000, f"the storm reached only {kernel / elapsed:.0f} drops/s ({sent} sent)"
    print(
        f"storm: {kernel / elapsed:.0f} drops/s, ours {ours} kernel {kernel}, keys {key_latency}, "
        f"rss {rss_early >> 20} -> {rss_late >> 20} MiB, logged {[s.drops.logged for s in storm]}"
    )  # type: ignore[union-attr]
    assert ours == kernel
    for s in storm:
        assert s.drops is not None
        assert s.drops.unbucketed == 0
        # Within its limit (a window boundary race may add a handful); a single reason may use 80%.
        assert s.drops.logged <= LOG_RATE * s.interval_s * 1.05 + 20
    busy = [s for s in storm if s.drops and sum(sum(r.per_cpu) for r in s.drops.reasons) > 100_000]
    assert len(busy) >= 4
    for s in busy[1:-1]:  # intervals wholly inside the storm: the log runs at its limit
        assert s.drops is not None
        assert s.drops.logged >= 0.7 * LOG_RATE * s.interval_s
        assert s.drops.suppressed > 0
    all_drops = sum(sum(r.per_cpu) for s in storm for r in s.drops.reasons)  # type: ignore[union-attr]
    accounted = sum(s.drops.logged + s.drops.suppressed + s.drops.lost for s in storm)  # type: ignore[union-attr]
    assert accounted == all_drops
    assert statistics.median(key_latency) < 0.3, key_latency
    assert max(key_latency) < 1.0, key_latency
    assert rss_late - rss_early < 20 * 1024 * 1024, (rss_early, rss_late)
