"""NAPI probe (bpf_src/napi.bpf.c): polls, packets and budget-exhausting polls per CPU."""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from netscope.model.sample import NapiCpu
from netscope.probes.base import Probe, per_cpu_values

Totals = Mapping[int, tuple[int, int, int]]  # cpu -> (polls, packets, budget_exhausted)


class NapiProbe(Probe[tuple[NapiCpu, ...]]):
    name = "napi"
    source_file = "napi.bpf.c"
    tracepoints = (("napi", "napi_poll"),)

    def read_totals(self, bpf: Any) -> Totals:
        values = per_cpu_values(bpf[b"napi_stats"][ctypes.c_int(0)], self.cpus)
        return {
            cpu: (v.polls, v.packets, v.budget_exhausted) for cpu, v in zip(self.cpus, values, strict=True)
        }

    def delta(self, previous: Totals, current: Totals) -> tuple[NapiCpu, ...]:
        return tuple(
            NapiCpu(cpu, *(a - b for a, b in zip(current[cpu], previous[cpu], strict=True)))
            for cpu in self.cpus
        )
