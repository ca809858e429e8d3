"""`g` in a replay: clock times on the recording's day (or the next, across midnight), offsets."""

from __future__ import annotations

from datetime import datetime

import pytest

from netscope.ui.prompt import PromptError
from netscope.ui.replay_jump import jump_target


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def test_clock_times_fall_on_the_recordings_day() -> None:
    first = at("2026-11-25 23:58:10")
    assert jump_target("23:59:30", first, first) == at("2026-11-25 23:59:30")
    assert jump_target("23:59", first, first) == at("2026-11-25 23:59:00")
    assert jump_target("00:00:05", first, first) == at("2026-11-26 00:00:05")  # past midnight


def test_offsets_count_from_the_sample_shown() -> None:
    assert jump_target("+90", 1000.0, 0.0) == 1090.0
    assert jump_target("-30", 1000.0, 0.0) == 970.0


@pytest.mark.parametrize("text", ["25:99", "noon", "+ten", "12:00:00:00"])
def test_bad_times_say_what_is_wrong(text: str) -> None:
    with pytest.raises(PromptError, match="not a"):
        jump_target(text, 1000.0, 1000.0)
