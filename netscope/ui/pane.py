"""What a pane is to the app: a widget that renders the views it is handed and the state of the
probes it reads. Which panes there are, their keys and probes: netscope/panes.py."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import ClassVar, cast

from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from netscope.model.sample import ProbeStatus
from netscope.model.timeline import ViewModel
from netscope.panes import PaneSpec
from netscope.ui.widgets import probe_line, show_text


class ShowPane(Message):
    """Show the pane with this id (a home screen's stage box, clicked): what its key does."""

    def __init__(self, pane: str) -> None:
        super().__init__()
        self.pane = pane


class Pane:
    """Mixed into a pane's widget: SPEC is its line in netscope/panes.py."""

    SPEC: ClassVar[PaneSpec]

    def show(self, shown: ViewModel) -> None:
        """Render an interval's views: the pane takes its own from `shown` (one not built yet, as
        before its probes' first interval, leaves the pane as it was)."""
        raise NotImplementedError

    def show_probes(
        self, statuses: tuple[ProbeStatus, ...], since: Mapping[str, float] | None = None
    ) -> None:
        """The state of the probes it attaches, with the reason of any that failed, on its probes
        line (a Static `#<id>-probes`, where it has one); looking back, where the figures of those
        attached since start (`since`) begin."""
        line = probe_line(statuses, self.SPEC.probes, since)
        for static in cast(Widget, self).query(f"#{self.SPEC.id}-probes").results(Static):
            show_text(static, line)


@cache
def pane_widget(spec: PaneSpec) -> type[Widget]:
    """The widget class of a pane, imported from its module under netscope.ui."""
    module, _, name = spec.widget.partition(":")
    widget: type[Widget] = getattr(importlib.import_module(f"netscope.ui.{module}"), name)
    return widget
