"""The real `netscope` in a real tmux session, for end-to-end tests: keys in, screen text out,
and the BPF programs loaded on the machine (bpftool) counted by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The raw tracepoints each probe hooks, and the names of its BPF programs (NS_HOOK in netscope.h).
HOOKS = {
    "hardirq": ("irq_handler_entry", "irq_handler_exit"),
    "softirq": ("softirq_entry", "softirq_exit", "softirq_raise"),
    "napi": ("napi_poll",),
    "drops": ("kfree_skb",),
    "rings": ("netif_receive_skb", "net_dev_start_xmit"),
    "latency": ("sk_data_ready", "sock_recv_length"),
    "stack": ("netif_receive_skb", "sk_data_ready"),
    "flows": ("kfree_skb", "netif_receive_skb"),
    "tcp": (
        "tcp_retransmit_skb",
        "tcp_send_reset",
        "tcp_receive_reset",
        "tcp_rcv_space_adjust",
        "tcp_rcvbuf_grow",
        "sock_exceed_buf_limit",
        "tcp_probe",
    ),
    "qdisc": ("qdisc_enqueue", "qdisc_dequeue"),
}
PROGRAMS = {probe: tuple(f"{probe}__{tp}" for tp in tps) for probe, tps in HOOKS.items()}
OUR_NAMES = {name for names in PROGRAMS.values() for name in names}


def bpftool_show(kind: str) -> list[dict[str, object]]:
    """`bpftool -j <kind> show`, read again when an object went away while bpftool walked the ids
    (it then prints an error entry and exits 255: a program of another test being freed)."""
    for _ in range(20):
        out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True)
        if out.returncode == 0:
            return list(json.loads(out.stdout or "[]"))
        time.sleep(0.05)
    raise AssertionError(f"bpftool {kind} show failed 20 times: {out.stdout} {out.stderr}")


def raw_tracepoint_links() -> list[dict[str, object]]:
    return [link for link in bpftool_show("link") if link.get("type") == "raw_tracepoint"]


def programs() -> dict[int, str]:
    """Id -> name of the loaded programs that have one of netscope's names (by anyone)."""
    return {int(str(p["id"])): str(p["name"]) for p in bpftool_show("prog") if p.get("name") in OUR_NAMES}


def program_ids() -> set[int]:
    return set(programs())


def attached_ids() -> set[int]:
    """Ids of netscope's programs that are attached now: a raw tracepoint link holds each (a
    program can stay loaded, its hooks detached, while no view needs it)."""
    linked = {int(str(link["prog_id"])) for link in raw_tracepoint_links()}
    return linked & program_ids()


def attached_probes(before: set[int]) -> set[str]:
    """The probes all of whose programs are attached now, of the programs loaded since `before`."""
    loaded = programs()
    names = {loaded[i] for i in attached_ids() - before if i in loaded}
    return {probe for probe, progs in PROGRAMS.items() if set(progs) <= names}


def new_attached(before: set[int]) -> int:
    """How many of netscope's programs not in `before` are attached now."""
    return len(attached_ids() - before)


def new_programs(before: set[int]) -> int:
    """How many of netscope's programs are loaded now that were not in `before`. (Programs of an
    earlier test may still be vanishing: the kernel frees them after an RCU grace period.)"""
    return len(program_ids() - before)


def programs_of(*probes: str) -> int:
    return sum(len(PROGRAMS[p]) for p in probes)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(step)


@dataclass
class Tui:
    session: str
    exit_file: Path

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True, text=True, check=True
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def wait_screen(self, predicate: Callable[[str], object], timeout: float, what: str) -> str:
        """The screen, once `predicate` holds for it; on timeout the failure shows the last screen."""
        deadline = time.monotonic() + timeout
        while not predicate(screen := self.screen()):
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}:\n{screen}"
            time.sleep(0.1)
        return screen

    def pid(self) -> int:
        """The netscope process: the shell's child in the tmux pane."""
        pane_pid = subprocess.run(
            ["tmux", "display", "-p", "-t", self.session, "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        child = subprocess.run(["pgrep", "-P", pane_pid], capture_output=True, text=True).stdout.split()
        assert child, "netscope process not found"
        return int(child[0])

    def signal(self, signum: int) -> None:
        os.kill(self.pid(), signum)

    def exit_code(self, timeout: float) -> int:
        """Wait for netscope to exit; its exit code."""
        wait_for(lambda: self.exit_file.exists() and self.exit_file.read_text().strip(), timeout, "exit")
        return int(self.exit_file.read_text())


@contextmanager
def netscope_in_tmux(
    tmp: Path, name: str, size: tuple[int, int], *args: str, runner: tuple[str, ...] = ()
) -> Iterator[Tui]:
    """`python -m netscope ARGS` in a detached tmux session of `size` (after `runner`, e.g. setpriv);
    killed afterwards."""
    session = f"netscope-{name}-{os.getpid()}"
    tui = Tui(session, tmp / f"{name}.exit")
    # Without COLUMNS/LINES from the test process (Textual would take them over the pane's size).
    command = (
        f"cd {REPO} && {' '.join(runner)} env -u COLUMNS -u LINES {sys.executable} -m netscope "
        f"{' '.join(args)}; "
        f"echo $? > {tui.exit_file}"
    )
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            f"{size[0]}",
            "-y",
            f"{size[1]}",
            "sh",
            "-c",
            command,
        ],
        check=True,
    )
    try:
        yield tui
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)


SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP}
