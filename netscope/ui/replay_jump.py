"""`g` in a replay: jump to a time of the recording (its clock: HH:MM or HH:MM:SS), or by seconds
from the sample shown (+90, -30)."""

from __future__ import annotations

from datetime import datetime, timedelta

from netscope.ui.prompt import PromptError, PromptScreen

HELP = "HH:MM[:SS] on the recording's clock, or +N / -N seconds from now   Enter: go   Esc: stay"


def jump_target(text: str, shown_ts: float, first_ts: float) -> float:
    """The UNIX time `text` names: a clock time on the recording's first day (the next day when it
    falls before the recording began: a recording across midnight), or an offset from `shown_ts`."""
    if text[:1] in "+-":
        try:
            return shown_ts + float(text)
        except ValueError:
            raise PromptError(f"not a number of seconds: {text!r}") from None
    for layout in ("%H:%M:%S", "%H:%M"):
        try:
            clock = datetime.strptime(text, layout).time()
            break
        except ValueError:
            continue
    else:
        raise PromptError(f"not a time: {text!r} (HH:MM, HH:MM:SS, +N or -N)")
    start = datetime.fromtimestamp(first_ts)
    when = datetime.combine(start.date(), clock)
    if when.timestamp() < first_ts - 1:
        when += timedelta(days=1)
    return when.timestamp()


class JumpScreen(PromptScreen[float]):
    """Dismisses with the UNIX time to jump to, None or False to stay."""

    def __init__(self, shown_ts: float, first_ts: float) -> None:
        current = datetime.fromtimestamp(shown_ts).strftime("%H:%M:%S")
        super().__init__("jump", "Jump to", current, HELP, lambda text: jump_target(text, shown_ts, first_ts))
