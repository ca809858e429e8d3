"""A one-line prompt over the screen: the text is checked as typed-in text is submitted, a mistake is
shown inline (the prompt stays), Esc cancels. The flow filter and the replay's jump use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

T = TypeVar("T")


class PromptError(Exception):
    """What is wrong with the text, as shown under it."""


class PromptScreen(ModalScreen["T | None | bool"], Generic[T]):
    """Dismisses with `parse(text)`, None for an empty line, or False when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PromptScreen {
        align: center middle;
    }
    """  # the box's own look is in app.tcss (.prompt-box)

    def __init__(
        self, prefix: str, title: str, current: str, help_text: str, parse: Callable[[str], T]
    ) -> None:
        """`parse` turns the submitted text into the value, or raises PromptError."""
        super().__init__()
        self.prefix = prefix
        self.title_text = title
        self.current = current
        self.help_text = help_text
        self.parse = parse

    def compose(self) -> ComposeResult:
        with Vertical(id=f"{self.prefix}-box", classes="prompt-box"):
            yield Static(Text(self.title_text, style="bold"))
            yield Input(value=self.current, id=f"{self.prefix}-input")
            yield Static(id=f"{self.prefix}-error", classes="prompt-error")
            yield Static(Text(self.help_text, style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.dismiss(None)
            return
        try:
            value = self.parse(text)
        except PromptError as e:
            self.query_one(f"#{self.prefix}-error", Static).update(Text(str(e), style="bold red"))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(False)
