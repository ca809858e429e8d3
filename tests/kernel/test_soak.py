"""The TUI left running with traffic at 1 s refresh: resident memory grows less than 5% and the
open fds and threads do not grow. `make test` soaks for 15 s, `make soak` for 10 minutes
(NETSCOPE_SOAK_S)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.netns import UDP_READER, UDP_SENDER, VethPair, in_ns
from harness.tmux import netscope_in_tmux
from tests.kernel.test_latency import ready

SUBNET = 85
SOAK_S = float(os.environ.get("NETSCOPE_SOAK_S", "15"))
WARM_UP_S = 20.0  # every pane visited, the compiler's pages handed back, the views' windows full


def usage(pid: int) -> tuple[int, int, int]:
    """(RSS kB, open fds, threads) of a process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rss_kb = int(status["VmRSS"].split()[0])
    return rss_kb, len(os.listdir(f"/proc/{pid}/fd")), int(status["Threads"])


def test_tui_soak_keeps_memory_fds_and_threads_flat(pair: VethPair, tmp_path: Path) -> None:
    run_s = str(int(SOAK_S + WARM_UP_S + 30))
    reader = in_ns(pair.receiver_ns, UDP_READER, "6401", "0", run_s)
    ready(reader)
    sender = in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, run_s, "6401", "6402")
    try:
        # The views kept to look back at grow for --look-back intervals, then stay: 10 of them fill
        # during the warm-up (their size is bounded in tests/unit/test_timeline.py).
        with netscope_in_tmux(tmp_path, "soak", (120, 40), "--look-back", "10") as tui:
            tui.wait_screen(lambda s: "Receive path" in s, 10, "the first frame")
            keys = ("r", "c", "d", "l", "5", "o", "x", "h")  # every pane, so every probe attaches
            for key in keys:
                tui.keys(key)
                time.sleep(1.0)
            time.sleep(WARM_UP_S - len(keys))
            pid = tui.pid()
            first = usage(pid)
            samples = [first]
            deadline = time.monotonic() + SOAK_S
            while time.monotonic() < deadline:
                time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
                samples.append(usage(pid))
            tui.wait_screen(
                lambda s: "NO_SOCKET" in s and "arrivals/s" in s, 5, "live numbers after the soak"
            )
            tui.keys("q")
            assert tui.exit_code(5) == 0
    finally:
        sender.kill()
        reader.kill()
        sender.wait()
        reader.wait()
    last = samples[-1]
    assert last[0] <= first[0] * 1.05, f"RSS kB over the soak: {[s[0] for s in samples]}"
    assert last[1] <= first[1], f"open fds over the soak: {[s[1] for s in samples]}"
    assert last[2] <= first[2], f"threads over the soak: {[s[2] for s in samples]}"
