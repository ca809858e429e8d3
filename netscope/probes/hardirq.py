"""Hardirq probe (bpf_src/hardirq.bpf.c): interrupts per IRQ line and CPU, and their handlers' time.
Exact: an interrupt is not per packet, and this kernel keeps no IRQ time of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netscope.model.sample import IrqCount
from netscope.probes.base import Probe, per_cpu_values

PerCpu = tuple[int, ...]
Totals = Mapping[int, tuple[PerCpu, PerCpu]]  # irq -> (counts, time_ns) per CPU


class HardirqProbe(Probe[tuple[IrqCount, ...]]):
    name = "hardirq"
    source_file = "hardirq.bpf.c"
    tracepoints = (("irq", "irq_handler_entry"), ("irq", "irq_handler_exit"))

    def read_totals(self, bpf: Any) -> Totals:
        hardirq = {}
        for key, values in bpf[b"hardirq_stats"].items():
            picked = per_cpu_values(values, self.cpus)
            hardirq[int(key.value)] = (tuple(v.count for v in picked), tuple(v.time_ns for v in picked))
        return hardirq

    def delta(self, previous: Totals, current: Totals) -> tuple[IrqCount, ...]:
        zero = tuple(0 for _ in self.cpus)
        out = []
        for irq in sorted(current):
            counts, times = current[irq]
            prev_counts, prev_times = previous.get(irq, (zero, zero))
            d_counts = tuple(a - b for a, b in zip(counts, prev_counts, strict=True))
            if any(d_counts):
                d_times = tuple(a - b for a, b in zip(times, prev_times, strict=True))
                out.append(IrqCount(irq, d_counts, d_times))
        return tuple(out)
