"""Every way out of the TUI detaches every BPF program: q, Ctrl-C, SIGTERM, SIGHUP (ssh dropped).

The TUI runs in a real tmux session; `bpftool prog show` is checked before, during and after.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from netscope.app import ALWAYS_ATTACHED
from netscope.ui.flows_pane import FlowsPane
from netscope.ui.home_pane import HomePane
from tests.kernel.tmux import (
    SIGNALS,
    netscope_in_tmux,
    new_attached,
    new_programs,
    program_ids,
    programs_of,
    wait_for,
)


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("q", 0), ("C-c", 0), ("TERM", 128 + signal.SIGTERM), ("HUP", 128 + signal.SIGHUP)],
)
def test_tui_exit_detaches_every_program(tmp_path: Path, how: str, exit_code: int) -> None:
    before = program_ids()
    with netscope_in_tmux(tmp_path, f"exit-{how}", (100, 30)) as tui:
        # The home screen's probes, then the Flows pane's: loaded together, home's detached but
        # kept for a while (flipping back recompiles nothing).
        wait_for(lambda: new_attached(before) == programs_of(*HomePane.PROBES), 20, "home's probes")
        tui.keys("t")
        loaded = programs_of(*set(HomePane.PROBES) | set(FlowsPane.PROBES))
        wait_for(lambda: new_programs(before) == loaded, 20, "the Flows pane's probes to load")
        flows = programs_of(*set(FlowsPane.PROBES) | set(ALWAYS_ATTACHED))
        wait_for(lambda: new_attached(before) == flows, 5, "only Flows' attached")
        assert "Flows" in tui.screen()
        if how in SIGNALS:
            tui.signal(SIGNALS[how])
        else:
            tui.keys(how)
        started = time.monotonic()
        assert tui.exit_code(5) == exit_code
        assert time.monotonic() - started < 2.0
        wait_for(lambda: new_programs(before) == 0, 2, "every program to be freed")
