"""The top line: host, kernel, uptime, refresh interval and live/paused/replay state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from netscope.model.sample import HostInfo
from netscope.ui.format import fmt_duration


@dataclass(frozen=True)
class ReplayState:
    position: int  # 1-based: the sample shown
    total: int
    speed: float
    playing: bool


def header_text(
    info: HostInfo,
    ts: float | None,
    interval_s: float,
    live: bool,
    paused: bool,
    replay: ReplayState | None = None,
    behind_s: float | None = None,
    scope: str = "",
) -> Text:
    """State first, then what identifies the box: a narrow terminal cuts the least useful end.
    `behind_s`: looking back while live, how far the view on screen is behind the newest; `scope`:
    the processes the views of processes are narrowed to ("" the whole box)."""
    state, style = ("LIVE", "bold green") if live else ("REPLAY", "bold magenta")
    if paused:
        state, style = "PAUSED", "bold yellow"
    if behind_s is not None:
        state, style = f"BACK {fmt_duration(behind_s)}", "bold cyan"
    text = Text()
    text.append(" netscope ", style="bold reverse")
    text.append(f" {state} ", style=style)
    if replay is not None:
        mark = "▶" if replay.playing else "⏸"
        text.append(f" {mark} {replay.position}/{replay.total} ×{replay.speed:g}", style="magenta")
    if scope:
        text.append(f" only {scope} ", style="bold yellow")
    if ts is not None:
        text.append(f" {datetime.fromtimestamp(ts).strftime('%H:%M:%S')}")
    if replay is None:
        text.append(f"  every {interval_s:g}s")
    text.append("  ")
    text.append(info.host, style="bold")
    text.append(f"  {info.kernel}  {len(info.cpus)} CPUs")
    if ts is not None and info.boot_time:
        text.append(f"  up {fmt_duration(ts - info.boot_time)}")
    return text


class NetscopeHeader(Static):
    def __init__(self) -> None:
        super().__init__(id="header")
