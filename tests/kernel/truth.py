"""The kernel's own counters, read by the tests' own code: never through netscope's parsers, so a
parser's mistake cannot hide in a test that compares netscope with what it parsed itself."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar


def softirqs() -> dict[str, dict[int, int]]:
    """/proc/softirqs: runs per vector and CPU id."""
    head, *rows = Path("/proc/softirqs").read_text().splitlines()
    cpus = [int(c.removeprefix("CPU")) for c in head.split()]
    out = {}
    for row in rows:
        name, *counts = row.split()
        out[name.rstrip(":")] = {cpu: int(n) for cpu, n in zip(cpus, counts, strict=False)}
    return out


def numbered_interrupts() -> int:
    """/proc/interrupts: every CPU's count of the numbered lines (LOC, RES, ... are not IRQ lines)."""
    head, *rows = Path("/proc/interrupts").read_text().splitlines()
    n_cpus = len(head.split())
    total = 0
    for row in rows:
        first, *rest = row.split()
        if first.rstrip(":").isdigit():
            total += sum(int(v) for v in rest[:n_cpus] if v.isdigit())
    return total


def softnet() -> list[tuple[int, int, int]]:
    """/proc/net/softnet_stat, per CPU row: (processed, dropped, time_squeeze), hexadecimal there."""
    return [
        (int(f[0], 16), int(f[1], 16), int(f[2], 16))
        for f in (line.split() for line in Path("/proc/net/softnet_stat").read_text().splitlines())
    ]


def softirq_ticks() -> dict[int, int]:
    """/proc/stat: each CPU's time in softirqs, in clock ticks (the 7th column of its cpuN line)."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0].startswith("cpu") and f[0][3:].isdigit():
            out[int(f[0][3:])] = int(f[7])
    return out


class Recorder:
    """NET_RX runs and softnet `processed` (all CPUs), read every 2 ms in a thread, each reading
    with the wall time before and after it: `between(t0, t1)` bounds what the kernel counted in an
    interval on both sides, from the readings wholly inside it and those just outside it. A
    reading the box delayed (a flood preempts the thread) widens the bounds, never shifts them."""

    def __init__(self) -> None:
        self.readings: list[tuple[float, float, int, int]] = []  # (before, after, runs, processed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            before = time.time()
            runs = sum(softirqs()["NET_RX"].values())
            processed = sum(p for p, _, _ in softnet())
            self.readings.append((before, time.time(), runs, processed))
            time.sleep(0.002)

    def between(self, t0: float, t1: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """((least, most) NET_RX runs, (least, most) softnet processed) from t0 to t1 (wall
        clock): least from the readings taken wholly inside, most from those just outside."""
        inside = [r for r in self.readings if r[0] >= t0 and r[1] <= t1]
        before = [r for r in self.readings if r[1] <= t0]
        after = [r for r in self.readings if r[0] >= t1]
        assert inside and before and after, "an interval edge outside the recording"
        first, last, outer0, outer1 = inside[0], inside[-1], before[-1], after[0]
        return (last[2] - first[2], outer1[2] - outer0[2]), (last[3] - first[3], outer1[3] - outer0[3])


def link_stats(ns: str, dev: str) -> dict[str, dict[str, int]]:
    """A device's stats64 from `ip -s -j link` in its namespace: {"rx": {...}, "tx": {...}}."""
    out = subprocess.run(
        ["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    stats: dict[str, dict[str, int]] = json.loads(out)[0]["stats64"]
    return stats


def link_packets(ns: str, dev: str) -> tuple[int, int]:
    """(rx, tx) packets of a device: the kernel's stats64."""
    info = link_stats(ns, dev)
    return int(info["rx"]["packets"]), int(info["tx"]["packets"])


def udp_queued(ns: str, port: int) -> int:
    """Bytes waiting on the UDP sockets bound to `port` in namespace `ns` (/proc/net/udp rx_queue)."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", "/proc/net/udp"], capture_output=True, text=True, check=True
    ).stdout
    queued = 0
    for line in out.splitlines()[1:]:
        f = line.split()
        if int(f[1].rsplit(":", 1)[1], 16) == port:
            queued += int(f[4].split(":")[1], 16)
    return queued


@contextmanager
def snmp_in(ns: str, proto: str = "Udp") -> Iterator[Callable[[], dict[str, int]]]:
    """A reader of the `proto` section of /proc/net/snmp in namespace `ns`, taking microseconds, not
    a process's start: through /proc/<pid>/net of a process left idle in the namespace."""
    idle = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "600"])
    try:
        own = os.stat(f"/run/netns/{ns}").st_ino
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{idle.pid}/ns/net").st_ino != own:  # until it entered the namespace
            assert time.monotonic() < deadline, f"never entered {ns}"
            time.sleep(0.01)

        def read() -> dict[str, int]:
            lines = [line.split() for line in Path(f"/proc/{idle.pid}/net/snmp").read_text().splitlines()]
            head, values = [row for row in lines if row[0] == f"{proto}:"]
            return {k: int(v) for k, v in zip(head[1:], values[1:], strict=True)}

        yield read
    finally:
        idle.kill()
        idle.wait()


T = TypeVar("T")


def settled(read: Callable[[], T], quiet_s: float = 0.15, timeout: float = 10.0) -> T:
    """`read()` once it has not changed for `quiet_s`: the kernel is done with what was sent (no
    fixed sleep before an exact comparison: a busy machine may take longer)."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"still changing after {timeout} s: {value}"
        time.sleep(0.02)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value
