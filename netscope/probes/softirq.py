"""Softirq probe (bpf_src/softirq.bpf.c): per vector and CPU, raises and runs (exact), run time and
raise-to-run wait (from sampled runs and raises)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from netscope.model.sample import SoftirqCpu
from netscope.probes import cdefs
from netscope.probes.base import Probe, per_cpu_values

NR_SOFTIRQS = cdefs.define("NR_SOFTIRQS")
FIELDS = ("raises", "runs", "time_ns", "timed", "wait_ns_sum", "wait_count")

PerCpu = tuple[int, ...]


@dataclass(frozen=True)
class Totals:
    fields: dict[str, tuple[PerCpu, ...]]  # field -> per CPU -> per vector, cumulative
    wait_max: tuple[PerCpu, ...]  # per CPU -> per vector; since the previous read


class SoftirqProbe(Probe[tuple[SoftirqCpu, ...]]):
    name = "softirq"
    sample_field = "softirq"
    source_file = "softirq.bpf.c"
    tracepoints = (("irq", "softirq_raise"), ("irq", "softirq_entry"), ("irq", "softirq_exit"))
    per_packet = ("softirq_exit", "softirq_entry", "softirq_raise")
    sampled = True
    hooks_per_run = 1.5  # a raise, an entry and an exit per two sampler runs (first raise, entry)

    def forget_scratch(self, bpf: Any, hooks: list[str]) -> None:
        for name in (b"softirq_raised_at", b"softirq_entered_at", b"softirq_pending"):
            bpf[name].clear()

    def read_totals(self, bpf: Any) -> Totals:
        stats = bpf[b"softirq_stats"]
        rows = [per_cpu_values(stats[ctypes.c_int(vec)], self.cpus) for vec in range(NR_SOFTIRQS)]
        fields = {
            f: tuple(
                tuple(int(getattr(rows[vec][i], f)) for vec in range(NR_SOFTIRQS))
                for i in range(len(self.cpus))
            )
            for f in FIELDS
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
        return Totals(fields, wait_max)

    def delta(self, previous: Totals, current: Totals) -> tuple[SoftirqCpu, ...]:
        def diff(field: str, i: int) -> tuple[int, ...]:
            now, before = current.fields[field][i], previous.fields[field][i]
            return tuple(a - b for a, b in zip(now, before, strict=True))

        return tuple(
            SoftirqCpu(
                cpu=cpu,
                raises=diff("raises", i),
                runs=diff("runs", i),
                time_ns=diff("time_ns", i),
                wait_ns_sum=diff("wait_ns_sum", i),
                wait_count=diff("wait_count", i),
                wait_ns_max=current.wait_max[i],
                timed=diff("timed", i),
            )
            for i, cpu in enumerate(self.cpus)
        )
