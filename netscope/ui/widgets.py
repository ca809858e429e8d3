"""Pieces the panes share: column specs that narrow gracefully, and the probes status line."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.styles import RulesMap
from textual.events import Resize
from textual.visual import Visual
from textual.widget import Widget
from textual.widgets import DataTable, Sparkline, Static

from netscope.model.latency import SLOW_NS, VERY_SLOW_NS
from netscope.model.sample import ProbeState, ProbeStatus
from netscope.ui.format import NO_DATA

R = TypeVar("R")


@dataclass(frozen=True)
class Column(Generic[R]):
    label: str
    width: int
    keep: int  # lower stays longer as the terminal narrows
    value: Callable[[R], str]
    meaning: str
    numeric: bool = True  # right-justified
    style: Callable[[R], str] | None = None  # e.g. red when the value is a loss

    def header(self) -> Text:
        return Text(self.label, justify="right" if self.numeric else "left")

    def cell(self, row: R, style: str = "") -> Text:
        if self.style is not None:
            style = self.style(row) or style
        return Text(self.value(row), justify="right" if self.numeric else "left", style=style)


class FitsWidth:
    """A widget whose columns fit its width. Textual sends a Resize each time a pane comes back
    into view: showing the pane again then rebuilt its tables a second time per pane switch, the
    dearest work of a key press on a loaded box. Only a new width shows it again."""

    _fitted_width = 0

    def fitted_width(self, fallback: int) -> int:
        """The width to fit the columns to: the widget's own; while it is hidden (its width is 0
        then, as when a key shows it) the one it had last; `fallback` before its first layout."""
        self._fitted_width = self._width() or self._fitted_width
        return self._fitted_width or fallback

    def on_resize(self, event: Resize) -> None:
        if self._width() and self._width() != self._fitted_width:
            self.refit()

    def _width(self) -> int:
        assert isinstance(self, Widget)
        return self.size.width

    def refit(self) -> None:
        """Show the last data again, fitted to the new width."""


PROBE_MARK = {
    ProbeState.IDLE: ("·", "dim"),
    ProbeState.PENDING: ("○", "dim"),
    ProbeState.STARTING: ("◌", "yellow"),
    ProbeState.LIVE: ("●", "green"),
    ProbeState.FAILED: ("✗", "bold red"),
    ProbeState.STOPPED: ("■", "dim"),
    ProbeState.OFF: ("–", "dim"),
}


def fit_columns(columns: Sequence[Column[R]], width: int, reserved: int) -> tuple[Column[R], ...]:
    """The columns that fit in `width`, dropping the least essential first, in their order."""
    chosen = list(columns)
    for level in sorted({c.keep for c in columns}, reverse=True):
        if reserved + sum(c.width + 2 for c in chosen) <= width:
            break
        if level == 1:
            break
        chosen = [c for c in chosen if c.keep < level]
    return tuple(chosen)


def fixed_table(table_id: str, columns: Sequence[tuple[str, int]]) -> DataTable[Any]:
    """A row-cursor table with fixed (label, width) columns."""
    table: DataTable[Any] = DataTable(id=table_id, cursor_type="row", zebra_stripes=True)
    for label, width in columns:
        table.add_column(label, width=width)
    return table


def set_columns(
    table: DataTable[Any],
    leading: tuple[str, int],
    columns: Sequence[Column[R]],
    trailing: Sequence[tuple[str, int]] = (),
) -> None:
    """Replace a table's columns: a label column, the fitted spec columns, then free-width extras."""
    table.clear(columns=True)
    table.add_column(leading[0], width=leading[1])
    for c in columns:
        table.add_column(c.header(), width=c.width)
    for label, width in trailing:
        table.add_column(label, width=width)


def show_text(widget: Static, text: Text) -> None:
    """Show `text` in a Static only when it changed, and lay the screen out again (the dearest part
    of a frame) only when the new text changes the widget's size: most lines of a screen read the
    same from one second to the next, and most of the others change a figure, not their height."""
    if widget.content == text:
        return
    styles, width = widget.styles, widget.content_size.width
    if styles.width is not None and styles.width.is_auto:
        widget.update(text)  # as wide as its text
        return
    if styles.height is not None and not styles.height.is_auto:
        widget.update(text, layout=False)  # its size is set, whatever it shows (shown or not)
        return
    if not width:
        # Not laid out yet, or hidden (another pane's probe line): the layout that shows it sizes
        # it, and laying the screen out for it now was a layout of the whole screen a second.
        widget.update(text, layout=False)
        return
    before = lines_of(widget, widget.visual, width)
    widget.update(text, layout=False)
    if lines_of(widget, widget.visual, width) != before:
        widget.refresh(layout=True)


def lines_of(widget: Widget, visual: Visual, width: int) -> int:
    """How many lines `visual` takes in `widget`'s content `width`, under its styles."""
    return visual.get_height(cast(RulesMap, widget.styles), width)  # (its rules, resolved)


ESTIMATED = "~"  # before a figure estimated from a sample of the packets (1 in N, the probes line)


def estimated(value: str, rate: int) -> str:
    """`value`, marked as an estimate when it comes from 1 in `rate` of the packets."""
    return marked(value, rate > 1)


def marked(value: str, is_estimate: bool) -> str:
    """`value`, marked as an estimate when it is one."""
    return f"{ESTIMATED}{value}" if is_estimate and value != NO_DATA else value


def header_sort(
    event: DataTable.HeaderSelected, header_sorts: Mapping[str, str], sorts: Mapping[str, Any]
) -> int | None:
    """The index in `sorts` of the order a click on a column's header picks (`header_sorts`:
    column label -> order name); None for a column that is no sort key."""
    label = event.label.plain if isinstance(event.label, Text) else event.label
    name = header_sorts.get(str(label))
    return None if name is None else list(sorts).index(name)


def cursor_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the table's cursor (None: an empty table, or a row without one)."""
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def probe_line(
    statuses: Sequence[ProbeStatus], names: Sequence[str], since: Mapping[str, float] | None = None
) -> Text:
    """The state of the probes a pane reads (`names`), with the reason of any that failed. Looking
    back, `since`: when each probe attached later than netscope started came live (its figures
    start there, where the counters' history goes back further)."""
    statuses = [s for s in statuses if s.name in names]
    text = Text("probes ", style="dim")
    for status in statuses:
        mark, style = PROBE_MARK[status.state]
        text.append(f"{mark} {status.name}", style=style)
        if status.state == ProbeState.LIVE and status.sample_rate > 1:  # its per-packet figures: ~
            text.append(f" 1:{status.sample_rate}", style="yellow")
            if status.window_every > 1:
                text.append(f" (measured 1 interval in {status.window_every})", style="yellow")
        if since and status.name in since:
            started = time.strftime("%H:%M:%S", time.localtime(since[status.name]))
            text.append(f" (its figures from {started})", style="yellow")
        if status.state == ProbeState.STARTING and status.detail:
            text.append(f" ({status.detail})", style="dim")
        text.append("  ")
    for status in statuses:
        if status.not_counted:
            text.append(f"{status.name}: {status.not_counted:,} not counted (map full)  ", style="red")
        if status.evicted:
            text.append(f"{status.name}: {status.evicted:,} evicted  ", style="yellow")
    for status in statuses:
        if status.state == ProbeState.FAILED:
            text.append(f"\n{status.name} failed: {status.error}", style="red")
    if any(s.state == ProbeState.OFF for s in statuses):
        text.append("\n--no-bpf: the figures of these probes need BPF (run netscope as root)", style="yellow")
    return text


def slow_style(ns: float | None) -> str:
    """The colour of a wait: a slow reader stands out."""
    if ns is None:
        return ""
    return "bold red" if ns >= VERY_SLOW_NS else "yellow" if ns >= SLOW_NS else ""


TREND_MIN_HEIGHT = 30  # terminal rows under which a trend line gives its row to the tables


class TrendLine(Horizontal):
    """A figure over the last intervals on one line: its name, Textual's Sparkline, and the newest
    and largest values as `fmt` writes them. Hidden while there is nothing to draw, and on a short
    terminal (80x24), where its row goes to the table."""

    def __init__(self, label: str, fmt: Callable[[float], str], **kwargs: Any) -> None:
        super().__init__(classes="trend-line", **kwargs)
        self.label = label
        self.fmt = fmt

    def compose(self) -> ComposeResult:
        yield Static(Text(self.label, style="bold"), classes="trend-line-label")
        yield Sparkline([], classes="trend-line-spark")
        yield Static(classes="trend-line-figure")

    def show(self, values: Sequence[float]) -> None:
        self.display = bool(values) and self.app.size.height >= TREND_MIN_HEIGHT
        if not self.display:
            return
        self.query_one(Sparkline).data = list(values)
        now, peak = self.fmt(values[-1]), self.fmt(max(values))
        show_text(self.query_one(".trend-line-figure", Static), Text(f"now {now}  max {peak}", style="dim"))
