from __future__ import annotations

from netscope.ui.format import (
    NO_DATA,
    fmt_bytes,
    fmt_count,
    fmt_duration,
    fmt_ns,
    fmt_pct,
    fmt_ratio,
    histogram_bar,
    sparkline,
)


def test_counts() -> None:
    assert [fmt_count(v) for v in (0, 12, 999, 1234, 45_600, 1_234_567, 3.4e9)] == [
        "0",
        "12",
        "999",
        "1.2k",
        "45.6k",
        "1.2M",
        "3.4G",
    ]
    assert fmt_count(0.5) == "0.5"
    assert fmt_count(123_456) == "123k"
    assert fmt_count(None) == NO_DATA


def test_percent_and_durations() -> None:
    assert [fmt_pct(v) for v in (0, 0.05, 12.34, 100)] == ["0", "<0.1", "12.3", "100"]
    assert [fmt_ns(v) for v in (850, 12_300, 4_500_000, 1_200_000_000)] == [
        "850ns",
        "12.3µs",
        "4.5ms",
        "1.20s",
    ]
    assert fmt_ratio(2.46) == "2.5"
    assert [fmt_duration(s) for s in (45, 754, 3 * 3600 + 240, 2 * 86400 + 3 * 3600)] == [
        "45s",
        "12m34s",
        "3h04m",
        "2d03h",
    ]


def test_sparkline_scales_to_the_maximum_and_keeps_the_latest() -> None:
    assert sparkline([0, 5, 10], 3) == "▁▅█"
    assert sparkline([1, 2, 3, 4], 2) == "▆█"
    assert sparkline([None, 0], 4) == "   ▁"
    assert sparkline([], 3) == "   "


def test_bytes_and_histogram_bars() -> None:
    assert [fmt_bytes(v) for v in (0, 512, 1234, 845_000_000, 3.4e9)] == [
        "0B",
        "512B",
        "1.2kB",
        "845MB",
        "3.4GB",
    ]
    assert histogram_bar([0, 1, 2, 4]) == " ▃▅█"
    assert histogram_bar([0, 0]) == "  "
