"""The pane registry (netscope/panes.py) is the one list the TUI and the CLI derive their panes from:
every pane has its own key and digit, a widget that is a Pane and knows its line, probes that exist,
and (but the home screen) a section of the headless commands."""

from __future__ import annotations

from textual.binding import Binding

from netscope import cli
from netscope.app import NetscopeApp
from netscope.panes import BY_ID, PANES
from netscope.sources.live import PROBES
from netscope.ui.help import KEYS
from netscope.ui.pane import Pane, pane_widget


def test_each_pane_has_its_key_its_digit_and_a_widget_that_knows_its_line() -> None:
    keys = [p.key for p in PANES]
    assert len(set(keys)) == len(keys) and len(BY_ID) == len(PANES)
    bindings = {b.action: b.key for b in NetscopeApp.BINDINGS if isinstance(b, Binding)}
    for digit, spec in enumerate(PANES):
        assert bindings[f"show_pane('{spec.id}')"] == f"{spec.key},{digit}"
        widget = pane_widget(spec)
        assert issubclass(widget, Pane) and widget.SPEC is spec
        assert widget.show is not Pane.show  # it renders its part of the view model
        assert set(spec.probes) <= set(PROBES)
    assert any(key.startswith(f"{PANES[0].key} / 0") for key, _ in KEYS)
    assert any(f"{PANES[-1].key} / {len(PANES) - 1}" in key for key, _ in KEYS)


def test_the_headless_sections_are_the_panes_but_the_home_screen() -> None:
    panes = {p.id: p.probes for p in PANES if p.id != "home"}
    assert {k: v for k, v in cli.SECTIONS.items() if k not in ("drop-log", "tcp")} == panes
    assert cli.SECTIONS["drop-log"] == ("drops",)
    assert cli.SECTIONS["tcp"] == ("tcp",)  # export's TCP counters without the flow table


def test_every_drill_down_screen_and_its_message_do_their_part() -> None:
    """A screen renders each interval (update_view); a Drill message builds its screen."""
    import importlib
    import pkgutil

    import netscope.ui
    from netscope.ui.drill import Drill, DrillScreen

    for module in pkgutil.iter_modules(netscope.ui.__path__):
        importlib.import_module(f"netscope.ui.{module.name}")
    screens, messages = DrillScreen.__subclasses__(), Drill.__subclasses__()
    assert len(screens) >= 6 and len(messages) >= 5
    assert all(s.update_view is not DrillScreen.update_view for s in screens)
    assert all(m.screen is not Drill.screen for m in messages)
