"""Every way out of the TUI detaches every BPF program: q, Ctrl-C, SIGTERM, SIGHUP (ssh dropped).

The TUI runs in a real tmux session; `bpftool prog show` is checked before, during and after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Every BPF program netscope attaches, by name, with how many of each (several probes share a
# tracepoint: netif_receive_skb feeds rings, latency and flows).
OUR_PROGRAMS = {
    "raw_tracepoint__irq_handler_entry": 1,
    "raw_tracepoint__irq_handler_exit": 1,
    "softirq_entry": 1,
    "softirq_exit": 1,
    "softirq_raise": 1,
    "napi_poll": 1,
    "kfree_skb": 2,
    "raw_tracepoint__netif_receive_skb": 3,
    "raw_tracepoint__net_dev_start_xmit": 1,
    "sk_data_ready": 1,
    "raw_tracepoint__sock_recv_length": 1,
}
REPO = Path(__file__).resolve().parents[2]


def loaded_programs() -> int:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return sum(1 for p in json.loads(out or "[]") if p.get("name") in OUR_PROGRAMS)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("q", 0), ("C-c", 0), ("TERM", 128 + signal.SIGTERM), ("HUP", 128 + signal.SIGHUP)],
)
def test_tui_exit_detaches_every_program(tmp_path: Path, how: str, exit_code: int) -> None:
    before = loaded_programs()
    session = f"netscope-exit-{os.getpid()}-{how}"
    exit_file = tmp_path / "exit"
    command = f"cd {REPO} && {sys.executable} -m netscope; echo $? > {exit_file}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", "-c", command], check=True
    )
    try:
        wait_for(
            lambda: loaded_programs() == before + sum(OUR_PROGRAMS.values()), 20, "every probe to attach"
        )
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
        ).stdout
        assert "CPUs" in screen and "LIVE" in screen
        if how in ("q", "C-c"):
            subprocess.run(["tmux", "send-keys", "-t", session, how], check=True)
        else:
            pane_pid = subprocess.run(
                ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            child = subprocess.run(["pgrep", "-P", pane_pid], capture_output=True, text=True).stdout.split()
            assert child, "netscope process not found"
            os.kill(int(child[0]), getattr(signal, f"SIG{how}"))
        started = time.monotonic()
        wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 5, "netscope to exit")
        assert time.monotonic() - started < 2.0
        assert int(exit_file.read_text()) == exit_code
        assert loaded_programs() == before
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
