"""Every way out of the TUI detaches every BPF program: q, Ctrl-C, SIGTERM, SIGHUP (ssh dropped),
the terminal gone, also while 100,000 flows keep it busy.

The TUI runs in a real tmux session; `bpftool prog show` is checked before, during and after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.netns import VethPair, flood_flows
from harness.tmux import (
    SIGNALS,
    netscope_in_tmux,
    new_attached,
    new_programs,
    program_ids,
    programs_of,
    wait_for,
)
from netscope.app import ALWAYS_ATTACHED
from netscope.panes import BY_ID

SUBNET = 92


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("q", 0), ("C-c", 0), ("TERM", 128 + signal.SIGTERM), ("HUP", 128 + signal.SIGHUP)],
)
def test_tui_exit_detaches_every_program(tmp_path: Path, how: str, exit_code: int) -> None:
    before = program_ids()
    with netscope_in_tmux(tmp_path, f"exit-{how}", (100, 30)) as tui:
        # The home screen's probes, then the Flows pane's: loaded together, home's detached but
        # kept for a while (flipping back recompiles nothing).
        wait_for(lambda: new_attached(before) == programs_of(*BY_ID["home"].probes), 20, "home's probes")
        tui.keys("t")
        loaded = programs_of(*set(BY_ID["home"].probes) | set(BY_ID["flows"].probes))
        wait_for(lambda: new_programs(before) == loaded, 20, "the Flows pane's probes to load")
        flows = programs_of(*set(BY_ID["flows"].probes) | set(ALWAYS_ATTACHED))
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


def test_tui_on_100k_flows_ends_with_its_terminal(pair: VethPair, tmp_path: Path) -> None:
    """100,000 concurrent flows on the Flows pane, then the tmux session killed (the terminal gone,
    SIGHUP): within 5 s no netscope process is left and none of its programs is loaded."""
    before = program_ids()
    flood = flood_flows(pair, 40, sockets=100, ports=1000)
    pid = 0
    try:
        with netscope_in_tmux(tmp_path, "flows-100k", (120, 40)) as tui:
            wait_for(lambda: new_attached(before) == programs_of(*BY_ID["home"].probes), 20, "home's probes")
            tui.keys("t")
            flows = programs_of(*set(BY_ID["flows"].probes) | set(ALWAYS_ATTACHED))
            wait_for(lambda: new_attached(before) == flows, 30, "the Flows pane's probes")
            time.sleep(8)  # the flow table fills: 100k flows at the flood's rate
            pid = tui.pid()
            subprocess.run(["tmux", "kill-session", "-t", tui.session], check=True)
            started = time.monotonic()
            wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5, "netscope to end with its terminal")
            wait_for(
                lambda: new_programs(before) == 0, 5 - (time.monotonic() - started), "its programs freed"
            )
    finally:
        flood.kill()
        flood.wait()
        if pid and Path(f"/proc/{pid}").exists():  # failed: no orphan left to load the next tests
            os.kill(pid, signal.SIGKILL)
