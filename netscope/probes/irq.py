"""Interrupts probe (bpf_src/irq.bpf.c): hardirqs per IRQ line and CPU (count, handler time) and
softirqs per vector and CPU (raises, runs, run time, raise-to-run wait). One program, one compile."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netscope.model.sample import IrqCount, SoftirqCpu
from netscope.probes.base import Probe, per_cpu_values

NR_SOFTIRQS = 10  # NS_NR_SOFTIRQS in bpf_src/netscope.h
SOFTIRQ_FIELDS = ("raises", "runs", "time_ns", "wait_ns_sum", "wait_count")

PerCpu = tuple[int, ...]


@dataclass(frozen=True)
class IrqSample:
    hardirq: tuple[IrqCount, ...]
    softirq: tuple[SoftirqCpu, ...] | None  # None: the softirq hooks were paused


@dataclass(frozen=True)
class Totals:
    hardirq: Mapping[int, tuple[PerCpu, PerCpu]]  # irq -> (counts, time_ns) per CPU
    softirq: Mapping[str, tuple[PerCpu, ...]]  # field -> per CPU -> per vector
    softirq_wait_max: tuple[PerCpu, ...]  # per CPU -> per vector; not cumulative


class IrqProbe(Probe[IrqSample]):
    name = "irq"
    source_file = "irq.bpf.c"
    tracepoints = (
        ("irq", "irq_handler_entry"),
        ("irq", "irq_handler_exit"),
        ("irq", "softirq_raise"),
        ("irq", "softirq_entry"),
        ("irq", "softirq_exit"),
    )
    per_packet = ("softirq_exit", "softirq_entry", "softirq_raise")

    def forget_scratch(self, bpf: Any) -> None:
        for name in (b"softirq_raised_at", b"softirq_entered_at"):
            bpf[name].clear()

    def without_per_packet(self, data: IrqSample) -> IrqSample:
        """Hardirq handlers are not per packet (NAPI masks them under load): they always count."""
        return IrqSample(data.hardirq, None)

    def read_totals(self, bpf: Any) -> Totals:
        hardirq = {}
        for key, values in bpf[b"hardirq_stats"].items():
            picked = per_cpu_values(values, self.cpus)
            hardirq[int(key.value)] = (tuple(v.count for v in picked), tuple(v.time_ns for v in picked))
        stats = bpf[b"softirq_stats"]
        rows = [per_cpu_values(stats[ctypes.c_int(vec)], self.cpus) for vec in range(NR_SOFTIRQS)]
        softirq = {
            f: tuple(
                tuple(getattr(rows[vec][i], f) for vec in range(NR_SOFTIRQS)) for i in range(len(self.cpus))
            )
            for f in SOFTIRQ_FIELDS
        }
        # The maximum is not cumulative: read it, then zero it (a wait landing in between is lost).
        maxima = bpf[b"softirq_wait_max"]
        per_vec = []
        for vec in range(NR_SOFTIRQS):
            per_vec.append(per_cpu_values(maxima[ctypes.c_int(vec)], self.cpus))
            if any(per_vec[-1]):
                maxima[ctypes.c_int(vec)] = maxima.Leaf()
        wait_max = tuple(
            tuple(int(per_vec[vec][i]) for vec in range(NR_SOFTIRQS)) for i in range(len(self.cpus))
        )
        return Totals(hardirq, softirq, wait_max)

    def delta(self, previous: Totals, current: Totals) -> IrqSample:
        return IrqSample(self._hardirq(previous, current), self._softirq(previous, current))

    def _hardirq(self, previous: Totals, current: Totals) -> tuple[IrqCount, ...]:
        zero = tuple(0 for _ in self.cpus)
        out = []
        for irq in sorted(current.hardirq):
            counts, times = current.hardirq[irq]
            prev_counts, prev_times = previous.hardirq.get(irq, (zero, zero))
            d_counts = tuple(a - b for a, b in zip(counts, prev_counts, strict=True))
            if any(d_counts):
                d_times = tuple(a - b for a, b in zip(times, prev_times, strict=True))
                out.append(IrqCount(irq, d_counts, d_times))
        return tuple(out)

    def _softirq(self, previous: Totals, current: Totals) -> tuple[SoftirqCpu, ...]:
        def diff(field: str, i: int) -> tuple[int, ...]:
            now, before = current.softirq[field][i], previous.softirq[field][i]
            return tuple(a - b for a, b in zip(now, before, strict=True))

        return tuple(
            SoftirqCpu(
                cpu=cpu,
                raises=diff("raises", i),
                runs=diff("runs", i),
                time_ns=diff("time_ns", i),
                wait_ns_sum=diff("wait_ns_sum", i),
                wait_count=diff("wait_count", i),
                wait_ns_max=current.softirq_wait_max[i],
            )
            for i, cpu in enumerate(self.cpus)
        )
