"""Percentiles from the kernel's log-linear histograms against exact values."""

from __future__ import annotations

import random

import pytest

from netscope.model.latency import (
    PROC_BITS,
    SOCK_BITS,
    bucket_of,
    bucket_range,
    build_latency_view,
    merge,
    octave_bar,
    percentile,
    socket_label,
)
from netscope.model.sample import LatencySample, ProcLatency, SockLatency


def histogram(values: list[int], bits: int) -> tuple[tuple[int, int], ...]:
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_of(v, bits)] = counts.get(bucket_of(v, bits), 0) + 1
    return tuple(sorted(counts.items()))


def exact(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[max(0, int(q / 100.0 * len(ordered) + 0.999999) - 1)])


@pytest.mark.parametrize("bits", [PROC_BITS, SOCK_BITS])
def test_buckets_cover_every_value_once(bits: int) -> None:
    for v in [0, 1, 7, 15, 16, 17, 1000, 12345, 10**6, 2**30 + 5, 10**10]:
        low, high = bucket_range(bucket_of(v, bits), bits)
        assert low <= v < high
    # consecutive buckets tile the line without gaps
    for index in range(1, 300):
        assert bucket_range(index - 1, bits)[1] == bucket_range(index, bits)[0]


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: int(r.lognormvariate(13, 1.5)),  # µs to tens of ms, heavy tail
        lambda r: int(r.uniform(30e6, 100e6)),  # a reader waking every 100 ms
        lambda r: int(r.expovariate(1 / 50_000)),  # a prompt reader
        lambda r: r.choice([20_000, 20_000, 20_000, 80_000_000]),  # bimodal
    ],
)
def test_percentiles_within_10_percent_of_exact(draw) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(7)
    values = [max(1, draw(rnd)) for _ in range(20_000)]
    hist = histogram(values, PROC_BITS)
    for q in (50.0, 90.0, 99.0):
        ours = percentile(hist, q, PROC_BITS)
        assert ours is not None
        assert abs(ours - exact(values, q)) <= 0.10 * exact(values, q), (q, ours, exact(values, q))


def test_empty_histogram_has_no_percentiles() -> None:
    assert percentile((), 50.0, PROC_BITS) is None


def test_view_merges_processes_and_sorts_by_p99() -> None:
    fast = histogram([20_000] * 100, PROC_BITS)
    slow = histogram([50_000_000] * 10, PROC_BITS)
    sample = LatencySample(
        processes=(
            ProcLatency(10, "fast", 100, 6400, 100, fast, 25_000),
            ProcLatency(20, "slow", 12, 768, 10, slow, 51_000_000),
        ),
        sockets=(
            SockLatency(
                20, 17, "10.200.0.2", 6001, "0.0.0.0", 0, 12, 768, 10, histogram([50_000_000] * 10, SOCK_BITS)
            ),
        ),
        coarsened=1,
        arrivals=130,
    )
    view = build_latency_view(sample, 2.0, sample_rate=8)
    assert [p.comm for p in view.processes] == ["slow", "fast"]
    assert view.all.count == 110
    assert view.all.max_ns == 51_000_000
    assert view.processes[0].reads_per_s == 6.0
    assert view.processes[0].sockets[0].label == "udp 10.200.0.2:6001"
    assert view.reads == 112 and view.reads_per_s == 56.0  # every read, exact
    assert view.arrivals == 130 and view.sample_rate == 8 and view.coarsened == 1
    assert view.stack is None  # the stack probe's figure comes with its own sample
    assert sum(view.octaves) == 110
    assert merge([fast, fast]) == tuple((i, 2 * n) for i, n in fast)
    assert octave_bar(fast, PROC_BITS)[4] == 100  # 20 µs lies in the 2^14 ns octave


def test_socket_labels() -> None:
    tcp = SockLatency(1, 6, "10.200.0.2", 6101, "10.200.0.1", 40000, 1, 1, 1, ())
    assert socket_label(tcp) == "tcp 10.200.0.2:6101 ← 10.200.0.1:40000"
    v6 = SockLatency(1, 17, "fd00::2", 53, "::", 0, 1, 1, 1, ())
    assert socket_label(v6) == "udp [fd00::2]:53"
