"""The kernel's own counters over an interval: softnet per CPU, /proc/interrupts per line and CPU,
/proc/softirqs per vector and CPU, /proc/stat's interrupt and softirq time, the namespace's snmp
counters. Counters first: they cost the box nothing per packet, and each is read once an interval,
at its boundary, in every mode (they never pause and no flow filter applies to them).

Each reader names the Sample fields it fills and returns them from `read()`; `READERS` lists them
in the order they are read. A new /proc or sysfs reader is a class like these (in its own module)
and one line in `READERS`, with its fields in `Sample`."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, ClassVar, Protocol

from netscope.model.sample import (
    CPU_TIMES,
    PROC_COUNTS,
    SNMP,
    SOFTNET,
    HostInfo,
    IrqLine,
    ProcCpuTime,
    ProcIrqCount,
    ProcSoftirqCpu,
    SnmpCount,
    SoftnetCpu,
)
from netscope.sources import procfs
from netscope.sources.irq import map_irq_name
from netscope.sources.readings import Cumulative, Every, ReadGaps

IRQ_NAMES_EVERY_S = 5.0


class CounterReader(Protocol):
    """A reader of the kernel's own counters, made with the host and the interval's read gaps."""

    fields: ClassVar[tuple[str, ...]]  # the Sample fields `read` fills

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None: ...

    def read(self) -> dict[str, Any]:
        """The interval's values of `fields`. What cannot be read (a CPU or IRQ going away
        mid-read) is left out of this interval and marked in `gaps`, never made up."""
        ...


class SoftnetCounters:
    """/proc/net/softnet_stat per CPU: packets processed, dropped by a full backlog, time squeezes."""

    fields: ClassVar[tuple[str, ...]] = ("softnet",)

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None:
        self._softnet = Cumulative(lambda: {s.cpu: s for s in procfs.read_softnet_stat()}, SOFTNET, gaps)

    def read(self) -> dict[str, Any]:
        prev, now = self._softnet.step()
        return {
            "softnet": tuple(
                SoftnetCpu(
                    cpu,
                    cur.processed - before.processed,
                    cur.dropped - before.dropped,
                    cur.time_squeeze - before.time_squeeze,
                )
                for cpu, cur in sorted(now.items())
                if (before := prev.get(cpu)) is not None
            )
        }


class InterruptCounts:
    """Interrupts per line and softirq runs per vector, per CPU, from /proc/interrupts and
    /proc/softirqs; the IRQ lines named and mapped to their devices."""

    fields: ClassVar[tuple[str, ...]] = ("proc_interrupts", "proc_softirqs", "irq_lines", "softirq_names")

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None:
        self.info = info
        self._gaps = gaps
        _, names = procfs.read_softirqs()
        self._softirq_names = tuple(names)
        # IRQ lines named and mapped to devices (a sysfs file per line, a few per device): again
        # every few seconds, or at once when lines come or go.
        self._irq_names: Every[frozenset[int], tuple[IrqLine, ...]] = Every(
            IRQ_NAMES_EVERY_S, lambda _: irq_lines(procfs.read_interrupts()[1])
        )
        self._irq_lines: tuple[IrqLine, ...] = ()
        self._interrupts_prev: dict[int, tuple[int, ...]] = {}  # irq -> per CPU of info.cpus
        self._softirqs_prev: dict[int, tuple[int, ...]] = {}  # cpu -> runs per vector
        with contextlib.suppress(OSError, ValueError):
            self._counts()

    def read(self) -> dict[str, Any]:
        at = time.monotonic()
        try:
            interrupts, softirqs = self._counts()
            self._gaps.good(PROC_COUNTS, at)
        except (OSError, ValueError):  # keep the last names: an IRQ or device vanished while read
            interrupts, softirqs = (), ()
            self._gaps.bad(PROC_COUNTS)
        return {
            "proc_interrupts": interrupts,
            "proc_softirqs": softirqs,
            "irq_lines": self._irq_lines,
            "softirq_names": self._softirq_names,
        }

    def _counts(self) -> tuple[tuple[ProcIrqCount, ...], tuple[ProcSoftirqCpu, ...]]:
        """Interrupts per line and softirq runs per vector since the last call, per CPU (the IRQ
        lines' names are refreshed too)."""
        cpus = self.info.cpus
        columns, lines = procfs.read_interrupt_counts()
        softirq_columns, rows = procfs.read_softirqs()
        self._irq_lines = self._irq_names.get(frozenset(line.irq for line in lines))
        interrupts = {line.irq: _per_cpu(columns, line.per_cpu, cpus) for line in lines}
        per_vector = [_per_cpu(softirq_columns, rows.get(name, ()), cpus) for name in self._softirq_names]
        softirqs = {cpu: tuple(v[i] for v in per_vector) for i, cpu in enumerate(cpus)}
        proc_interrupts = tuple(
            ProcIrqCount(irq, delta)
            for irq, now in sorted(interrupts.items())
            if (prev := self._interrupts_prev.get(irq)) is not None
            and any(delta := tuple(a - b for a, b in zip(now, prev, strict=True)))
        )
        proc_softirqs = tuple(
            ProcSoftirqCpu(cpu, tuple(a - b for a, b in zip(now, prev, strict=True)))
            for cpu, now in softirqs.items()
            if (prev := self._softirqs_prev.get(cpu)) is not None
        )
        self._interrupts_prev, self._softirqs_prev = interrupts, softirqs
        return proc_interrupts, proc_softirqs


class CpuTimes:
    """Per CPU, time in hardirqs and softirqs over the interval (/proc/stat, in ticks)."""

    fields: ClassVar[tuple[str, ...]] = ("proc_cpu_times",)

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None:
        self.info = info
        self._ticks = Cumulative(procfs.read_stat_interrupt_ticks, CPU_TIMES, gaps)

    def read(self) -> dict[str, Any]:
        prev, now = self._ticks.step()
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        return {
            "proc_cpu_times": tuple(
                ProcCpuTime(
                    cpu, round((soft - prev[cpu][1]) * tick_ns), round((hard - prev[cpu][0]) * tick_ns)
                )
                for cpu, (hard, soft) in sorted(now.items())
                if cpu in prev and cpu in self.info.cpus
            )
        }


class SnmpCounters:
    """This namespace's loss and in counters over the interval (/proc/net/snmp, netstat, snmp6;
    none when /proc/net is unreadable)."""

    fields: ClassVar[tuple[str, ...]] = ("snmp",)

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None:
        self._counts = Cumulative(procfs.read_snmp_counters, SNMP, gaps)

    def read(self) -> dict[str, Any]:
        prev, now = self._counts.step()
        return {
            "snmp": tuple(SnmpCount(g, n, v - prev[(g, n)]) for (g, n), v in now.items() if (g, n) in prev)
        }


READERS: tuple[type[CounterReader], ...] = (SoftnetCounters, InterruptCounts, CpuTimes, SnmpCounters)


def _per_cpu(columns: tuple[int, ...], values: tuple[int, ...], cpus: tuple[int, ...]) -> tuple[int, ...]:
    """A /proc row's counts (in its column order) for the CPUs `cpus`; 0 for a column missing."""
    by_cpu = dict(zip(columns, values, strict=False))
    return tuple(by_cpu.get(cpu, 0) for cpu in cpus)


def irq_lines(lines: list[procfs.InterruptLine]) -> tuple[IrqLine, ...]:
    """/proc/interrupts lines, each mapped to its device and queue."""
    by_bus, by_irq = procfs.read_device_owners()
    interfaces = procfs.read_interfaces()
    out = []
    for line in lines:
        device, queue = map_irq_name(line.irq, line.name, by_bus, by_irq, interfaces)
        out.append(IrqLine(line.irq, line.name, device, queue))
    return tuple(out)
