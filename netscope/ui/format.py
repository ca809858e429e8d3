"""Numbers for people: 1.2M, 845k, 12.3 ms, 4.5%. Pure. None (no data) renders as an en dash."""

from __future__ import annotations

from collections.abc import Sequence

NO_DATA = "–"


def fmt_count(value: float | None) -> str:
    """A rate or count with an SI suffix: 0, 12, 999, 1.2k, 45k, 1.2M, 3.4G."""
    if value is None:
        return NO_DATA
    v = abs(value)
    for limit, div, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e3, 1e3, "k")):
        if v >= limit:
            scaled = value / div
            return f"{scaled:.1f}{suffix}" if abs(scaled) < 100 else f"{scaled:.0f}{suffix}"
    if v and v < 10 and value != int(value):
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_pct(value: float | None) -> str:
    if value is None:
        return NO_DATA
    if value == 0:
        return "0"
    if value < 0.1:
        return "<0.1"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_ns(value: float | None) -> str:
    """A duration given in nanoseconds: 850ns, 12.3µs, 4.5ms, 1.20s."""
    if value is None:
        return NO_DATA
    if value < 1e3:
        return f"{value:.0f}ns"
    if value < 1e6:
        return f"{value / 1e3:.1f}µs"
    if value < 1e9:
        return f"{value / 1e6:.1f}ms"
    return f"{value / 1e9:.2f}s"


def fmt_ratio(value: float | None) -> str:
    """A small average such as packets per poll."""
    if value is None:
        return NO_DATA
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_duration(seconds: float) -> str:
    """Uptime-style: 45s, 12m, 3h04m, 2d03h."""
    s = int(max(seconds, 0))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{s:02d}s"
    return f"{s}s"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], width: int) -> str:
    """The last `width` values as block characters scaled to their maximum; no data is a space."""
    tail = list(values)[-width:] if width > 0 else []
    top = max((v for v in tail if v is not None), default=0.0)
    chars = []
    for v in tail:
        if v is None:
            chars.append(" ")
        elif top <= 0 or v <= 0:
            chars.append(SPARK[0])
        else:
            chars.append(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))])
    return "".join(chars).rjust(width)


def fmt_bytes(value: float | None) -> str:
    """Bytes (or bytes per second) in SI units: 512B, 1.2kB, 845MB, 3.4GB."""
    if value is None:
        return NO_DATA
    for limit, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= limit:
            scaled = value / limit
            return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}B"


def histogram_bar(counts: Sequence[int]) -> str:
    """One block character per bucket, scaled to the largest: the shape of a distribution."""
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(
        SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.5))] if c else " " for c in counts
    )


def fmt_bql(inflight: float | None, limit: float | None) -> str:
    """BQL bytes in flight / limit of a TX queue (or a device's queues); n/a when it keeps none."""
    if limit is None:
        return "n/a"
    return f"{fmt_bytes(inflight or 0)}/{fmt_bytes(limit)}"
