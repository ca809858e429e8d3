"""The real `netscope` as a person runs it: tmux at 120x40 as root, with traffic in namespaces the
test made. Every pane shows live numbers, `?` shows help, each pane attaches only the programs it
reads, `q` exits within 3 s leaving no program behind, and bpf_stats is restored."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from harness.netns import UDP_READER, UDP_SENDER, VethPair, in_ns
from harness.tmux import (
    attached_probes,
    netscope_in_tmux,
    new_attached,
    new_programs,
    program_ids,
    programs_of,
    wait_for,
)
from netscope.app import ALWAYS_ATTACHED
from netscope.panes import BY_ID

SUBNET = 71
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
CLOSED_PORT = "9"  # nobody listens: NO_SOCKET drops
READ_PORT = "6201"


def alone(before: set[int], pane: str) -> Callable[[], bool]:
    """Whether the programs attached now are the pane's and those always attached, and no others."""
    return lambda: attached_probes(before) == {*ALWAYS_ATTACHED, *BY_ID[pane].probes}


def test_every_pane_live_in_tmux(tmp_path: Path, pair: VethPair) -> None:
    original = BPF_STATS.read_text().strip()
    BPF_STATS.write_text("0")
    reader = in_ns(pair.receiver_ns, UDP_READER, READ_PORT, "0.05", "60")
    sender = in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, "60", READ_PORT, CLOSED_PORT)
    before = program_ids()
    try:
        with netscope_in_tmux(tmp_path, "panes", (120, 40)) as tui:
            launched = time.monotonic()
            home = tui.wait_screen(lambda s: "Receive path" in s, 5, "the first frame")
            first_frame = time.monotonic() - launched
            for word in ("Rings", "CPUs", "Drops", "Latency"):
                assert word in home
            # The home screen reads every stage from the kernel's counters, but for interrupt times,
            # drop reasons and copy latency: exactly those programs attach.
            wait_for(lambda: new_attached(before) == programs_of(*BY_ID["home"].probes), 20, "home's probes")
            tui.wait_screen(lambda s: "NO_SOCKET" in s and "arrivals/s" in s, 10, "live numbers on home")
            # Its own cost, measured with bpf_stats (one interval in ten, to keep it cheap).
            tui.wait_screen(lambda s: "ns/run" in s, 10, "netscope's measured cost on home")
            # Each pane with its own live figure, as the kernel sees this traffic (~1000 pkt/s to each port).
            # Each pane attaches what it reads, and only that: the others' hooks are detached at once.
            tui.keys("r")
            tui.wait_screen(
                lambda s: re.search(rf"{pair.receiver_dev}@\S+\s+\d[\d.]*k", s), 10, "Rings: RX rate"
            )
            wait_for(alone(before, "rings"), 10, "the Rings pane's probes alone")
            tui.keys("c")
            tui.wait_screen(lambda s: re.search(r"│ all\s+\S+\s+\d[\d.]*k", s), 10, "CPUs: NET_RX runs/s")
            wait_for(alone(before, "cpus"), 10, "the CPUs pane's probes alone")
            tui.keys("d")
            tui.wait_screen(lambda s: re.search(r"NO_SOCKET\s+\d{3,}", s), 10, "Drops: NO_SOCKET/s")
            wait_for(alone(before, "drops"), 10, "the Drops pane's probe alone")
            tui.keys("l")
            tui.wait_screen(lambda s: re.search(rf"{reader.pid}\s+python", s), 10, "Latency: the reader")
            wait_for(alone(before, "latency"), 10, "the Latency pane's probes alone")
            tui.keys("?")
            tui.wait_screen(lambda s: "this help" in s and "the Rings, CPUs" in s, 5, "help")
            tui.keys("Escape")
            tui.wait_screen(lambda s: "this help" not in s, 5, "help closed")
            # The Flows pane brings the flows program in.
            assert "flows" not in attached_probes(before)
            tui.keys("t")
            wait_for(alone(before, "flows"), 20, "the flows probe")
            tui.wait_screen(lambda s: f"{pair.receiver_ip}:{READ_PORT}" in s, 10, "Flows: the flow")
            tui.keys("x")  # the way out: the sender's veth sends the traffic, noqueue
            tui.wait_screen(
                lambda s: re.search(rf"{pair.sender_dev}@\S+\s+\d[\d.]*k?\s+noqueue", s), 10, "TX: the sender"
            )
            wait_for(alone(before, "tx"), 20, "the TX pane's probes alone")
            tui.keys("q")
            quit_at = time.monotonic()
            assert tui.exit_code(5) == 0
            assert time.monotonic() - quit_at < 3.0
        wait_for(lambda: new_programs(before) == 0, 2, "every program to be freed")
        assert BPF_STATS.read_text().strip() == "0"
        print(f"first frame {first_frame:.2f} s")
        assert first_frame < 3.0
    finally:
        BPF_STATS.write_text(original)
        for proc in (sender, reader):
            proc.kill()
            proc.wait()
