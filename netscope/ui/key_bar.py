"""The bottom line: the keys that work on this screen, each clickable.

Textual's Footer rebuilds one widget per key whenever the focus moves, which is at every pane
switch; on a box busy with a packet storm that alone held a key's answer back by 100-200 ms. This
is one line of text, redrawn only when the keys it lists change.
"""

from __future__ import annotations

from textual.content import Content
from textual.screen import Screen
from textual.style import Style
from textual.widgets import Static


class KeyBar(Static):
    """The screen's shown bindings, one entry per action (its first key), as 'q Quit  ? Help'."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="key-bar")
        self._keys: tuple[tuple[str, str, str, bool], ...] = ()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        keys: dict[str, tuple[str, str, str, bool]] = {}
        for active in screen.active_bindings.values():
            binding = active.binding
            if binding.show and binding.action not in keys:
                keys[binding.action] = (
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    active.enabled,
                )
        shown = tuple(keys.values())
        if shown == self._keys:
            return
        self._keys = shown
        parts: list[Content | tuple[str, str | Style]] = []
        for key, display, description, enabled in shown:
            click = Style.from_meta({"@click": f"app.simulate_key({key!r})"})
            key_style = Style.parse("bold reverse" if enabled else "dim") + click
            parts += [(f" {display} ", key_style), (f"{description} ", click)]
        self.update(Content.assemble(*parts))
