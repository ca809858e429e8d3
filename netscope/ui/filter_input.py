"""`/`: edit the flow filter. A bad expression is shown inline, pointing at the bad token, and the
filter in force stays; Enter on an empty line removes the filter; Esc cancels."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from netscope.model.filter import Filter, FilterError, parse_filter

HELP = (
    "host, src, dst, net CIDR, port, sport, dport, tcp, udp, icmp, ip, ip6, and/&&, or/||, not/!, ( )"
    "   Enter: apply   empty: no filter   Esc: keep the current one"
)


class FilterScreen(ModalScreen[Filter | None | bool]):
    """Dismisses with the new Filter, None to remove it, or False when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static(Text("Flow filter", style="bold"))
            yield Input(value=self.current, id="filter-input")
            yield Static(id="filter-error")
            yield Static(Text(HELP, style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.dismiss(None)
            return
        try:
            flt = parse_filter(text)
        except FilterError as e:
            self.query_one("#filter-error", Static).update(Text(e.pointer(), style="bold red"))
            return
        self.dismiss(flt)

    def action_cancel(self) -> None:
        self.dismiss(False)
