"""Stack probe (bpf_src/stack.bpf.c): how long sampled packets took from entering the stack to being
queued on their socket, as a log-linear histogram built in the kernel."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from netscope.model.sample import StackSample
from netscope.probes import cdefs
from netscope.probes.base import Probe
from netscope.probes.btf import kernel_btf
from netscope.probes.latency import sparse
from netscope.probes.offsets import kernel_offsets

STATS = cdefs.stats("STACK")  # NS_STACK_STAT_*, in index order


@dataclass(frozen=True)
class Totals:
    buckets: dict[int, int]
    stats: dict[str, int]


class StackProbe(Probe[StackSample]):
    name = "stack"
    sample_field = "stack"
    source_file = "stack.bpf.c"
    tracepoints = (("net", "netif_receive_skb"), ("sock", "sk_data_ready"))
    per_packet = ("sk_data_ready", "netif_receive_skb")
    sampled = True
    hooks_per_run = 2.0  # the skb's entry and its socket's wakeup

    def defines(self) -> dict[str, int | str]:
        return kernel_offsets(kernel_btf())

    def forget_scratch(self, bpf: Any, hooks: list[str]) -> None:
        """A stamp left from before the hooks were detached is stale."""
        bpf[b"stack_pending"].clear()

    def read_totals(self, bpf: Any) -> Totals:
        stats_map = bpf[b"stack_stats"]
        stats = {name: sum(int(v) for v in stats_map[ctypes.c_int(i)]) for i, name in enumerate(STATS)}
        return Totals(sparse(bpf[b"stack_hist"][ctypes.c_int(0)]), stats)

    def delta(self, previous: Totals, current: Totals) -> StackSample:
        return StackSample(
            buckets=tuple(
                (i, n - previous.buckets.get(i, 0))
                for i, n in sorted(current.buckets.items())
                if n > previous.buckets.get(i, 0)
            ),
            followed=current.stats["followed"] - previous.stats["followed"],
            unfollowed=current.stats["unfollowed"] - previous.stats["unfollowed"],
        )
