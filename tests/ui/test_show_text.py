"""show_text skips the screen's layout when a new text keeps a widget's size: the widget still
shows the new text, and grows or shrinks when the text's height changes."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

from netscope.ui.widgets import show_text


class Lines(App[None]):
    CSS = "#fixed { height: 1; } #auto { height: auto; }"

    def compose(self) -> ComposeResult:
        yield Static(id="auto")
        yield Static(id="fixed")


async def test_text_shown_and_height_follows() -> None:
    app = Lines()
    async with app.run_test(size=(40, 10)) as pilot:
        auto, fixed = app.query_one("#auto", Static), app.query_one("#fixed", Static)
        for widget in (auto, fixed):
            show_text(widget, Text("one line"))
        await pilot.pause()
        assert (auto.size.height, fixed.size.height) == (1, 1)
        show_text(auto, Text("first\nsecond\nthird"))
        show_text(fixed, Text("another line"))
        await pilot.pause()
        assert auto.size.height == 3
        assert fixed.region.y == 3  # moved down: the screen was laid out again
        assert "another line" in "".join(s.text for s in fixed.render_lines(fixed.region.reset_offset))
        show_text(auto, Text("a\nb\nc"))  # the same height: no layout needed, new text shown
        await pilot.pause()
        assert auto.size.height == 3
        assert [s.text.strip() for s in auto.render_lines(auto.region.reset_offset)] == ["a", "b", "c"]
        show_text(auto, Text("back to one"))
        await pilot.pause()
        assert auto.size.height == 1 and fixed.region.y == 1
