"""Hardirq probe (bpf_src/hardirq.bpf.c): interrupts per IRQ line and CPU, and their handlers' time.
Exact: an interrupt is not per packet, and this kernel keeps no IRQ time of its own. The kernel
counts per handler: a line shared by several devices runs every handler on every interrupt, so a
line's interrupts are its most-run handler's count (what /proc/interrupts counts), and its time the
sum of its handlers'."""

from __future__ import annotations

from typing import Any

from netscope.model.sample import IrqCount
from netscope.probes.base import Alive, Probe, drop_keys, map_max, per_cpu_values

IRQS_MAX = 1024  # IRQ handlers followed
PerCpu = tuple[int, ...]
Totals = dict[tuple[int, int], tuple[PerCpu, PerCpu]]  # (irq, irqaction) -> counts, time_ns per CPU


def per_line(handlers: Totals) -> dict[int, tuple[PerCpu, PerCpu]]:
    """Each line's interrupts and handler time per CPU over an interval, from its handlers': on
    every CPU the count of the handler that ran most (one added to a shared line or removed from it
    meanwhile ran fewer times), and the sum of their times."""
    lines: dict[int, tuple[PerCpu, PerCpu]] = {}
    for (irq, _), (counts, times) in sorted(handlers.items()):
        if irq in lines:
            was_counts, was_times = lines[irq]
            counts = tuple(map(max, counts, was_counts))
            times = tuple(a + b for a, b in zip(times, was_times, strict=True))
        lines[irq] = (counts, times)
    return lines


class HardirqProbe(Probe[tuple[IrqCount, ...]]):
    name = "hardirq"
    sample_field = "hardirq"
    source_file = "hardirq.bpf.c"
    tracepoints = (("irq", "irq_handler_entry"), ("irq", "irq_handler_exit"))
    full_map = "hardirq_full"

    def defines(self) -> dict[str, int | str]:
        return {"NS_MAX_IRQS": map_max(IRQS_MAX)}

    def prune_keys(self, bpf: Any, totals: Totals, alive: Alive) -> None:
        irqs = alive.irqs
        if irqs is None:
            return
        table = bpf[b"hardirq_stats"]
        drop_keys(table, totals, lambda k: k[0] not in irqs, lambda k: table.Key(irq=k[0], action=k[1]))

    def read_totals(self, bpf: Any) -> Totals:
        handlers = {}
        for key, values in bpf[b"hardirq_stats"].items():
            picked = per_cpu_values(values, self.cpus)
            counts, times = tuple(v.count for v in picked), tuple(v.time_ns for v in picked)
            handlers[(int(key.irq), int(key.action))] = (counts, times)
        return handlers

    def delta(self, previous: Totals, current: Totals) -> tuple[IrqCount, ...]:
        zero = tuple(0 for _ in self.cpus)
        handlers = {}
        for key, (counts, times) in current.items():
            prev_counts, prev_times = previous.get(key, (zero, zero))
            handlers[key] = (
                tuple(a - b for a, b in zip(counts, prev_counts, strict=True)),
                tuple(a - b for a, b in zip(times, prev_times, strict=True)),
            )
        return tuple(
            IrqCount(irq, counts, times)
            for irq, (counts, times) in sorted(per_line(handlers).items())
            if any(counts)
        )
