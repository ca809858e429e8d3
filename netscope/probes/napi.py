"""NAPI probe (bpf_src/napi.bpf.c): polls, packets, budget-exhausting polls, work histogram and
full-budget streaks per NAPI instance and CPU. The CPU pane sums instances per CPU; the Rings pane
reads them per device."""

from __future__ import annotations

from typing import Any

from netscope.model.sample import NapiInstance
from netscope.probes import cdefs
from netscope.probes.base import Alive, Probe, drop_keys, map_max, per_cpu_values
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

NAPI_MAX = 4096  # NAPI instances followed
NAPI_HIST = cdefs.define("NAPI_HIST")
STREAK_HIST = cdefs.define("STREAK_HIST")

Key = tuple[int, int, int]  # netns, ifindex, napi_id
Totals = dict[Key, tuple[str, tuple[tuple[int, ...], ...]]]  # name, per-field per-CPU or histogram


class NapiProbe(Probe[tuple[NapiInstance, ...]]):
    name = "napi"
    sample_field = "napi"
    source_file = "napi.bpf.c"
    tracepoints = (("napi", "napi_poll"),)
    per_packet = ("napi_poll",)
    sampled = True
    full_map = "napi_full"

    def defines(self) -> dict[str, int | str]:
        return {**kernel_offsets(kernel_btf()), "NS_NAPI_MAX": map_max(NAPI_MAX)}

    def prune_keys(self, bpf: Any, totals: Totals, alive: Alive) -> None:
        table = bpf[b"napi_stats"]
        drop_keys(
            table,
            totals,
            lambda k: alive.device_gone(k[0], k[1]),
            lambda k: table.Key(netns=k[0], ifindex=k[1], napi_id=k[2]),
        )

    def read_totals(self, bpf: Any) -> Totals:
        totals: Totals = {}
        for k, values in bpf[b"napi_stats"].items():
            per_cpu = per_cpu_values(values, self.cpus)
            name = next((v.ifname.decode(errors="replace") for v in values if v.ifname), "")
            totals[(int(k.netns), int(k.ifindex), int(k.napi_id))] = (
                name,
                (
                    tuple(int(v.polls) for v in per_cpu),
                    tuple(int(v.packets) for v in per_cpu),
                    tuple(int(v.budget_exhausted) for v in per_cpu),
                    tuple(sum(int(v.work_hist[b]) for v in values) for b in range(NAPI_HIST)),
                    tuple(sum(int(v.streak_hist[b]) for v in values) for b in range(STREAK_HIST)),
                ),
            )
        return totals

    def delta(self, previous: Totals, current: Totals) -> tuple[NapiInstance, ...]:
        out = []
        for key, (name, fields) in sorted(current.items()):
            before = previous.get(key, (name, tuple(tuple(0 for _ in f) for f in fields)))[1]
            d = [
                tuple(a - b for a, b in zip(now, was, strict=True))
                for now, was in zip(fields, before, strict=True)
            ]
            if any(d[0]):
                netns, ifindex, napi_id = key
                out.append(NapiInstance(netns, ifindex, name, napi_id, d[0], d[1], d[2], d[3], d[4]))
        return tuple(out)
