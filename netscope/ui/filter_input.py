"""`/`: edit the filter (flows, and `pid` / `container` for processes). A bad expression is shown
inline, pointing at the bad token, and the filter in force stays; Enter on an empty line removes
the filter; Esc cancels."""

from __future__ import annotations

from netscope.model.filter import Filter, FilterError, parse_filter
from netscope.ui.prompt import PromptError, PromptScreen

HELP = (
    "host, src, dst, net CIDR, port, sport, dport, tcp, udp, icmp, ip, ip6, and/&&, or/||, not/!, ( ); "
    "pid N, container ID (joined with and)"
    "   Enter: apply   empty: no filter   Esc: keep the current one"
)


def _parse(text: str) -> Filter:
    try:
        return parse_filter(text)
    except FilterError as e:
        raise PromptError(e.pointer()) from None


class FilterScreen(PromptScreen[Filter]):
    """Dismisses with the new Filter, None to remove it, or False when cancelled."""

    def __init__(self, current: str) -> None:
        super().__init__("filter", "Filter", current, HELP, _parse)
