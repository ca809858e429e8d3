"""ViewModel over everything while the terminal is smaller than netscope's layouts need: a sentence
instead of clipped tables. Keys still work (q quits); it goes away when the terminal grows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 80, 24


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmallScreen(ModalScreen[None]):
    BINDINGS = [Binding("q", "app.quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.show_size(self.app.size.width, self.app.size.height)

    def show_size(self, width: int, height: int) -> None:
        self.query_one("#too-small", Static).update(
            f"netscope needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; this one is "
            f"{width}x{height}. Enlarge it (collection goes on), or press q to quit."
        )
