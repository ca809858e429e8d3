"""The kernel's own counters, read by the tests' own code: never through netscope's parsers, so a
parser's mistake cannot hide in a test that compares netscope with what it parsed itself."""

from __future__ import annotations

from pathlib import Path


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
