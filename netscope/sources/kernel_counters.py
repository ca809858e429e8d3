"""The kernel's own counters over an interval: softnet per CPU, /proc/interrupts per line and CPU,
/proc/softirqs per vector and CPU, /proc/stat's interrupt and softirq time, the namespace's snmp
counters. Counters first: they cost the box nothing per packet, and each is read once an interval,
at its boundary, in every mode."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Counters:
    """The kernel's own counters over one interval."""

    softnet: tuple[SoftnetCpu, ...]
    interrupts: tuple[ProcIrqCount, ...]
    softirqs: tuple[ProcSoftirqCpu, ...]
    cpu_times: tuple[ProcCpuTime, ...]
    snmp: tuple[SnmpCount, ...]

    @property
    def processed(self) -> int:
        """Packets softnet processed over the interval, all CPUs (each skb entering the stack)."""
        return sum(s.processed for s in self.softnet)


class KernelCounters:
    """Each interval's deltas of the kernel's counters (`read`), and the IRQ lines named."""

    def __init__(self, info: HostInfo, gaps: ReadGaps) -> None:
        self.info = info
        self._gaps = gaps
        _, names = procfs.read_softirqs()
        self.softirq_names = tuple(names)
        self._softnet = Cumulative(lambda: {s.cpu: s for s in procfs.read_softnet_stat()}, SOFTNET, gaps)
        self._snmp_counts = Cumulative(procfs.read_snmp_counters, SNMP, gaps)
        self._ticks = Cumulative(procfs.read_stat_interrupt_ticks, CPU_TIMES, gaps)
        # IRQ lines named and mapped to devices (a sysfs file per line, a few per device): again
        # every few seconds, or at once when lines come or go.
        self._irq_names: Every[frozenset[int], tuple[IrqLine, ...]] = Every(
            IRQ_NAMES_EVERY_S, lambda _: irq_lines(procfs.read_interrupts()[1])
        )
        self.irq_lines: tuple[IrqLine, ...] = ()
        self._interrupts_prev: dict[int, tuple[int, ...]] = {}  # irq -> per CPU of info.cpus
        self._softirqs_prev: dict[int, tuple[int, ...]] = {}  # cpu -> runs per vector
        with contextlib.suppress(OSError, ValueError):
            self._kernel_counts()

    def read(self) -> Counters:
        """The kernel's own counts over the interval: softnet, /proc/interrupts and softirqs,
        /proc/stat's interrupt time, the namespace's snmp counters. What cannot be read (a CPU or
        IRQ going away mid-read) is left out of this interval, never made up."""
        prev, now = self._softnet.step()
        softnet = tuple(
            SoftnetCpu(
                cpu,
                cur.processed - before.processed,
                cur.dropped - before.dropped,
                cur.time_squeeze - before.time_squeeze,
            )
            for cpu, cur in sorted(now.items())
            if (before := prev.get(cpu)) is not None
        )
        at = time.monotonic()
        try:
            interrupts, softirqs = self._kernel_counts()
            self._gaps.good(PROC_COUNTS, at)
        except (OSError, ValueError):  # keep the last names: an IRQ or device vanished while read
            interrupts, softirqs = (), ()
            self._gaps.bad(PROC_COUNTS)
        return Counters(softnet, interrupts, softirqs, self._cpu_times(), self._snmp())

    def irqs_alive(self) -> frozenset[int] | None:
        """The IRQ lines of the last good read of /proc/interrupts; None when this interval's failed."""
        return frozenset(self._interrupts_prev) if PROC_COUNTS not in self._gaps.failed else None

    def _cpu_times(self) -> tuple[ProcCpuTime, ...]:
        """Per CPU, time in hardirqs and softirqs over the interval (/proc/stat, in ticks)."""
        prev, now = self._ticks.step()
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        return tuple(
            ProcCpuTime(cpu, round((soft - prev[cpu][1]) * tick_ns), round((hard - prev[cpu][0]) * tick_ns))
            for cpu, (hard, soft) in sorted(now.items())
            if cpu in prev and cpu in self.info.cpus
        )

    def _snmp(self) -> tuple[SnmpCount, ...]:
        """This namespace's loss and in counters over the interval (none when /proc/net is unreadable)."""
        prev, now = self._snmp_counts.step()
        return tuple(SnmpCount(g, n, v - prev[(g, n)]) for (g, n), v in now.items() if (g, n) in prev)

    def _kernel_counts(self) -> tuple[tuple[ProcIrqCount, ...], tuple[ProcSoftirqCpu, ...]]:
        """Interrupts per line and softirq runs per vector since the last call, per CPU, from
        /proc/interrupts and /proc/softirqs (the IRQ lines' names are refreshed too)."""
        cpus = self.info.cpus
        columns, lines = procfs.read_interrupt_counts()
        softirq_columns, rows = procfs.read_softirqs()
        self.irq_lines = self._irq_names.get(frozenset(line.irq for line in lines))
        interrupts = {line.irq: _per_cpu(columns, line.per_cpu, cpus) for line in lines}
        per_vector = [_per_cpu(softirq_columns, rows.get(name, ()), cpus) for name in self.softirq_names]
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
