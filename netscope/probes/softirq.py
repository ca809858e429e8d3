"""Softirq probe (bpf_src/softirq.bpf.c): raises, runs, run time and raise-to-run wait per vector."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from netscope.model.sample import SoftirqCpu
from netscope.probes.base import Probe, per_cpu_values

NR_SOFTIRQS = 10  # NS_NR_SOFTIRQS in bpf_src/netscope.h
FIELDS = ("raises", "runs", "time_ns", "wait_ns_sum", "wait_count")

Totals = Mapping[str, tuple[tuple[int, ...], ...]]  # field -> per CPU -> per vector


class SoftirqProbe(Probe[tuple[SoftirqCpu, ...]]):
    name = "softirq"
    source_file = "softirq.bpf.c"
    tracepoints = (("irq", "softirq_raise"), ("irq", "softirq_entry"), ("irq", "softirq_exit"))

    def read_totals(self, bpf: Any) -> Totals:
        stats = bpf[b"softirq_stats"]
        rows = [per_cpu_values(stats[ctypes.c_int(vec)], self.cpus) for vec in range(NR_SOFTIRQS)]
        totals = {
            f: tuple(
                tuple(getattr(rows[vec][i], f) for vec in range(NR_SOFTIRQS)) for i in range(len(self.cpus))
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
        totals["wait_ns_max"] = tuple(
            tuple(int(per_vec[vec][i]) for vec in range(NR_SOFTIRQS)) for i in range(len(self.cpus))
        )
        return totals

    def delta(self, previous: Totals, current: Totals) -> tuple[SoftirqCpu, ...]:
        def diff(field: str, i: int) -> tuple[int, ...]:
            return tuple(a - b for a, b in zip(current[field][i], previous[field][i], strict=True))

        return tuple(
            SoftirqCpu(
                cpu=cpu,
                raises=diff("raises", i),
                runs=diff("runs", i),
                time_ns=diff("time_ns", i),
                wait_ns_sum=diff("wait_ns_sum", i),
                wait_count=diff("wait_count", i),
                wait_ns_max=current["wait_ns_max"][i],
            )
            for i, cpu in enumerate(self.cpus)
        )
