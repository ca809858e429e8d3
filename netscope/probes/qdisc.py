"""Qdisc probe (bpf_src/qdisc.bpf.c): how long sampled packets waited in each device's qdisc
(enqueue to dequeue), as a log-linear histogram per device built in the kernel."""

from __future__ import annotations

import time
from typing import Any

from netscope.model.sample import QdiscWait
from netscope.probes.base import Probe, map_max
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

STAMPS = 8192  # sampled skbs in the qdiscs at once
HIST_KEYS = 8192  # (device, bucket) pairs
STALE_NS = 1_000_000_000  # a stamp this old was dropped by its qdisc, or dequeued behind another

Key = tuple[int, int]  # netns, ifindex
Hist = dict[tuple[int, int, int], int]  # (netns, ifindex, bucket) -> weighted count, cumulative


class QdiscProbe(Probe[tuple[QdiscWait, ...]]):
    name = "qdisc"
    sample_field = "qdisc_wait"
    source_file = "qdisc.bpf.c"
    tracepoints = (("qdisc", "qdisc_dequeue"), ("qdisc", "qdisc_enqueue"))
    per_packet = ("qdisc_dequeue", "qdisc_enqueue")
    sampled = True
    closing = ("qdisc_dequeue",)  # stays on after a window until what it stamped has left
    drain_s = 0.05
    hooks_per_run = 2.0  # each packet's enqueue and dequeue
    full_map = "qdisc_full"

    def defines(self) -> dict[str, int | str]:
        return {
            **kernel_offsets(kernel_btf()),
            "NS_QDISC_STAMPS": map_max(STAMPS),
            "NS_QDISC_HIST_KEYS": map_max(HIST_KEYS),
        }

    def forget_scratch(self, bpf: Any, hooks: list[str]) -> None:
        """Stamps from before the hooks were detached will never be paired."""
        bpf[b"qdisc_stamps"].clear()

    @staticmethod
    def _prune(bpf: Any) -> None:
        """Remove the stamps no dequeue will end: their skbs were dropped by the qdisc (counted
        there), or left in a bulk dequeue behind another."""
        table = bpf[b"qdisc_stamps"]
        oldest = time.monotonic_ns() - STALE_NS  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        for k, v in list(table.items()):
            if int(v.ts) < oldest:
                del table[k]

    def read_totals(self, bpf: Any) -> Hist:
        self._prune(bpf)
        return {
            (int(k.netns), int(k.ifindex), int(k.bucket)): int(v.value) for k, v in bpf[b"qdisc_hist"].items()
        }

    def delta(self, previous: Hist, current: Hist) -> tuple[QdiscWait, ...]:
        devices: dict[Key, list[tuple[int, int]]] = {}
        for (netns, ifindex, b), n in sorted(current.items()):
            moved = n - previous.get((netns, ifindex, b), 0)
            if moved > 0:
                devices.setdefault((netns, ifindex), []).append((b, moved))
        return tuple(
            QdiscWait(netns, ifindex, tuple(buckets)) for (netns, ifindex), buckets in sorted(devices.items())
        )
