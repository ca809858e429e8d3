"""Drops probe (bpf_src/drops.bpf.c): every dropped skb by reason, location, protocol, device, CPU,
plus a rate-limited log of individual drops through the BPF ring buffer.

Reason counts are exact (a per-CPU hash keyed by reason). The breakdown holds one interval: two
tables swapped every read (IntervalTables), so nothing counted while one is read and emptied is lost,
and keys of vanished devices go with their interval. A table is bounded: drops past what it holds
are still counted by reason, and reported as `unbucketed`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netscope.model.drops import ReasonNames, names_from_enums, parse_format_reasons
from netscope.model.filter import Filter
from netscope.model.sample import DropBucket, DropEvent, DropReasonCount, DropsSample
from netscope.probes import cdefs
from netscope.probes.base import (
    IntervalTables,
    Probe,
    ProbeError,
    ProbeOptions,
    address_text,
    map_max,
    per_cpu_values,
)
from netscope.probes.btf import BTF, BTFError, kernel_btf
from netscope.probes.kallsyms import kernel_symbols
from netscope.probes.offsets import kernel_offsets
from netscope.probes.tracefs import events_dir

DEFAULT_LOG_RATE = 1000  # drop log events per second, all CPUs together
DETAILS_MAX = 16384
LOG_SECONDS = 10  # the ring buffer holds this many seconds of log at the full rate
STATS = cdefs.stats("DROP")  # NS_DROP_STAT_*, in index order

Totals = Mapping[str, Any]


def reason_names(btf: BTF) -> ReasonNames:
    """The running kernel's names: the tracepoint's format file first, BTF enums for the rest."""
    enums = btf.enums_named("drop_reason")
    modules = Path("/sys/kernel/btf")
    for path in sorted(modules.glob("*")) if modules.is_dir() else ():
        if path.name != "vmlinux":
            try:
                enums.update(BTF(path.read_bytes(), base=btf).enums_named("drop_reason"))
            except (OSError, BTFError):
                continue
    names = names_from_enums(enums)
    events = events_dir()
    if events is not None:
        try:
            from_format = parse_format_reasons((events / "skb" / "kfree_skb" / "format").read_text())
        except OSError:
            from_format = {}
        if from_format:
            names = ReasonNames({**names.core, **from_format}, names.subsystems, names.subsystem_reasons)
    if not names.core:
        raise ProbeError("this kernel names no drop reasons (no enum skb_drop_reason in BTF)")
    return names


def _ring_pages(rate: int) -> int:
    """Pages of the drop log's ring buffer: LOG_SECONDS of events at `rate`, each record an event
    and its 8-byte header (BPF_RINGBUF_HDR_SZ)."""
    pages = 1
    while pages * 4096 < rate * LOG_SECONDS * (cdefs.define("DROP_EVENT_SIZE") + 8):
        pages *= 2
    return max(pages, 8)


class DropsProbe(Probe[DropsSample]):
    name = "drops"
    sample_field = "drops"
    filtered = True
    source_file = "drops.bpf.c"
    tracepoints = (("skb", "kfree_skb"),)

    def __init__(
        self,
        cpus: tuple[int, ...],
        log_rate: int = DEFAULT_LOG_RATE,
        flt: Filter | None = None,
        details_max: int | None = None,
    ) -> None:
        super().__init__(cpus, flt)
        self.log_rate = log_rate
        self.details_max = details_max or map_max(DETAILS_MAX)
        self._details = IntervalTables(("drop_details",))
        self.names: ReasonNames | None = None
        self._events: list[DropEvent] = []
        self._event_table: Any = None
        self._wall_offset = 0.0

    @classmethod
    def create(cls, cpus: tuple[int, ...], flt: Filter | None, options: ProbeOptions) -> DropsProbe:
        return cls(cpus, options.drop_log_rate, flt)

    def defines(self) -> dict[str, int | str]:
        btf = kernel_btf()
        if btf.tracepoint_args("kfree_skb") is not None and (btf.tracepoint_args("kfree_skb") or 0) < 3:
            raise ProbeError("skb:kfree_skb on this kernel has no drop reason argument (Linux 5.17+ needed)")
        self.names = reason_names(btf)
        reasons = btf.enum("skb_drop_reason")
        per_window = self.log_rate // 10 if self.log_rate >= 10 else self.log_rate
        defines = {
            "NS_DROP_LOG": int(self.log_rate > 0),
            **kernel_offsets(btf),
            "NS_SKB_NOT_DROPPED_YET": reasons.get("SKB_NOT_DROPPED_YET", 0),
            "NS_SKB_CONSUMED": reasons.get("SKB_CONSUMED", 1),
            "NS_DROP_DETAILS_MAX": self.details_max,
            "NS_DROP_RINGBUF_PAGES": _ring_pages(self.log_rate),
            # Tenth-of-a-second windows keep bursts short; below 10 events/s, one-second windows.
            "NS_DROP_LOG_WINDOW_NS": 100_000_000 if self.log_rate >= 10 else 1_000_000_000,
            "NS_DROP_LOG_PER_WINDOW": per_window,
            "NS_DROP_LOG_PER_REASON": max(1, per_window * 4 // 5),
        }
        if (btf.tracepoint_args("kfree_skb") or 0) >= 4:
            defines["NS_HAVE_RX_SK"] = 1
        return defines

    def before_attach(self, bpf: Any) -> None:
        self._details.prime(bpf)

    def attached(self, bpf: Any) -> None:
        self._wall_offset = time.time() - time.monotonic()
        self._event_table = bpf[b"drop_events"]
        self._event_table.open_ring_buffer(self._on_event)

    def _on_event(self, _ctx: Any, data: Any, _size: int) -> None:
        assert self.names is not None
        e = self._event_table.event(data)
        subsystem, name = self.names.decode(e.reason)
        self._events.append(
            DropEvent(
                ts=self._wall_offset + e.ts_ns / 1e9,
                cpu=e.cpu,
                reason=e.reason,
                name=name,
                subsystem=subsystem,
                symbol=kernel_symbols().symbolize(e.location),
                protocol=e.protocol,
                ifname=e.ifname.decode(errors="replace"),
                netns=e.netns,
                l4proto=e.l4proto,
                saddr=address_text(e.saddr, e.family),
                daddr=address_text(e.daddr, e.family),
                sport=e.sport,
                dport=e.dport,
            )
        )

    def read_totals(self, bpf: Any) -> Totals:
        """Cumulative counters, and the log events drained since the previous read."""
        reasons = {
            int(k.value): tuple(int(v) for v in per_cpu_values(vals, self.cpus))
            for k, vals in bpf[b"drop_reasons"].items()
        }
        # The interval's breakdown, read whole once the programs write the other table.
        details_map = bpf[f"drop_details_{self._details.swap(bpf)}".encode()]
        details = {}
        for k, vals in details_map.items():
            key = (
                k.reason,
                k.location,
                k.protocol,
                k.ifindex,
                k.ifname.decode(errors="replace"),
                k.netns,
                k.sk_ino,
                k.sk_cgroup,
            )
            details[key] = tuple(int(v) for v in per_cpu_values(vals, self.cpus))
        stats_map = bpf[b"drop_stats"]
        stats = {name: sum(int(v) for v in stats_map[ctypes.c_int(i)]) for i, name in enumerate(STATS)}
        bpf.ring_buffer_consume()
        events, self._events = self._events, []
        details_map.clear()
        return {"reasons": reasons, "details": details, "stats": stats, "events": events}

    def map_losses(self, totals: Totals) -> tuple[int, int]:
        """Drops the breakdown had no room for (counted by reason: `unbucketed`), and those the
        reasons map had none for (not counted at all)."""
        return totals["stats"]["details_full"] + totals["stats"]["reasons_full"], 0

    def delta(self, previous: Totals, current: Totals) -> DropsSample:
        assert self.names is not None
        zero = tuple(0 for _ in self.cpus)

        def diff(now: tuple[int, ...], before: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(a - b for a, b in zip(now, before, strict=True))

        reasons = []
        for reason, per_cpu in sorted(current["reasons"].items()):
            d = diff(per_cpu, previous["reasons"].get(reason, zero))
            if any(d):
                subsystem, name = self.names.decode(reason)
                reasons.append(DropReasonCount(reason, name, subsystem, d))
        buckets = []
        for key, d in current["details"].items():  # the interval's own
            if any(d):
                reason, location, protocol, ifindex, ifname, netns, sk_ino, sk_cgroup = key
                buckets.append(
                    DropBucket(
                        reason,
                        location,
                        kernel_symbols().symbolize(location),
                        protocol,
                        ifindex,
                        ifname,
                        netns,
                        d,
                        sk_ino,
                        sk_cgroup,
                    )
                )
        # A full reasons map is the status's `not_counted` (map_losses), not a field of the sample.
        stats = {k: current["stats"][k] - previous["stats"][k] for k in STATS}
        self.status = dataclasses.replace(self.status, lost_events=current["stats"]["lost"])
        return DropsSample(
            reasons=tuple(reasons),
            buckets=tuple(sorted(buckets, key=lambda b: (-sum(b.per_cpu), b.reason, b.symbol))),
            events=tuple(current["events"]),
            log_rate=self.log_rate,
            logged=stats["logged"],
            suppressed=stats["suppressed"],
            lost=stats["lost"],
            unbucketed=stats["details_full"],
        )
