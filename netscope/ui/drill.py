"""A drill-down screen: opened over a pane (Enter on a row), it attaches the probes it reads while
open, renders each interval's views, and Esc goes back. A pane asks for one with a Drill message:
the app opens whatever screen the message builds, knowing no pane's rows."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from netscope.model.timeline import ViewModel


class DrillScreen(Screen[None]):
    PROBES: ClassVar[tuple[str, ...]] = ()  # attached while it is open
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def update_view(self, shown: ViewModel) -> None:
        """Render an interval's views."""
        raise NotImplementedError

    def filter_text(self) -> str | None:
        """The flow filter `/` starts from on this screen (None: the one in force)."""
        return None


class Drill(Message):
    """Enter on a row: open its screen. A pane's message (CpuSelected, FlowChosen, ...) says which
    row, and builds the screen from the views now."""

    def screen(self, shown: ViewModel) -> DrillScreen:
        raise NotImplementedError
