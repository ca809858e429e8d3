"""Latency probe (bpf_src/latency.bpf.c): how long received data waited on its socket before the
reader copied it, per reading process and socket, as log-linear histograms built in the kernel."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from typing import Any

from netscope.model.sample import LatencySample, ProcLatency, SockLatency
from netscope.probes.base import Probe, address_text
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

SOCKETS_MAX = 8192
STATS = ("matched", "unmatched", "coarsened", "stack_unknown")  # NS_LAT_STAT_* order

Hist = tuple[tuple[int, int], ...]


Counters = tuple[int, int, int]  # reads, bytes, matched reads
Ident = tuple[int, str, int, str, int]  # protocol, local address, port, remote address, port


@dataclass(frozen=True)
class Totals:
    procs: dict[int, tuple[str, Counters, dict[int, int]]]  # tgid -> comm, counters, buckets
    maxima: dict[int, int]  # tgid -> max ns since the last read (read and reset)
    # (tgid, sk) -> its addresses, counters, histogram, and sk_rcvbuf (the largest of the CPUs'
    # copies: each holds the value at the socket's last read on that CPU)
    socks: dict[tuple[int, int], tuple[Ident, Counters, dict[int, int], int]]
    stats: dict[str, int]
    stack: dict[int, int]


def _counters(values: Any) -> Counters:
    return (
        sum(int(v.reads) for v in values),
        sum(int(v.bytes) for v in values),
        sum(int(v.count) for v in values),
    )


def _sparse(values: Any) -> dict[int, int]:
    """Per-CPU bucket arrays summed, keeping the non-zero buckets."""
    out: dict[int, int] = {}
    for per_cpu in values:
        for i, n in enumerate(per_cpu.buckets):
            if n:
                out[i] = out.get(i, 0) + int(n)
    return out


def _delta(
    now: tuple[Counters, dict[int, int]], before: tuple[Counters, dict[int, int]] | None
) -> tuple[Counters, Hist] | None:
    """The interval's counters and histogram; None when nothing was read. An entry the LRU map
    evicted and re-created counts from zero."""
    (reads, nbytes, count), hist = now
    (reads0, bytes0, count0), hist0 = before or ((0, 0, 0), {})
    if reads < reads0:
        (reads0, bytes0, count0), hist0 = (0, 0, 0), {}
    if reads == reads0:
        return None
    buckets = tuple((i, n - hist0.get(i, 0)) for i, n in sorted(hist.items()) if n > hist0.get(i, 0))
    return (reads - reads0, nbytes - bytes0, count - count0), buckets


class LatencyProbe(Probe[LatencySample]):
    name = "latency"
    source_file = "latency.bpf.c"
    tracepoints = (("sock", "sk_data_ready"), ("sock", "sock_recv_length"), ("net", "netif_receive_skb"))
    per_packet = ("sock_recv_length", "sk_data_ready", "netif_receive_skb")

    def forget_scratch(self, bpf: Any) -> None:
        """Each socket's arrivals start afresh (reads of older data count as unmatched), and skb
        stamps from before the pause are ignored (lat_since: bpf_ktime_get_ns is CLOCK_MONOTONIC)."""
        bpf[b"lat_rings"].clear()
        bpf[b"lat_since"][ctypes.c_int(0)] = ctypes.c_uint64(time.monotonic_ns())

    def defines(self) -> dict[str, int | str]:
        return {**kernel_offsets(kernel_btf()), "NS_LAT_SOCKETS": SOCKETS_MAX}

    def read_totals(self, bpf: Any) -> Totals:
        procs = {}
        for k, values in bpf[b"lat_by_proc"].items():
            comm = next((v.comm.decode(errors="replace") for v in values if v.comm), "")
            procs[int(k.value)] = (comm, _counters(values), _sparse(values))
        maxima_map = bpf[b"lat_proc_max"]
        maxima = {int(k.value): max(int(v) for v in values) for k, values in maxima_map.items()}
        maxima_map.clear()  # a maximum is per interval: a wait landing between read and clear is lost
        socks = {}
        for k, values in bpf[b"lat_by_sock"].items():
            v = next((v for v in values if v.protocol), values[0])
            family = int(v.family)
            ident = (
                int(v.protocol),
                address_text(v.saddr, 6 if family == 10 else 4),
                int(v.sport),
                address_text(v.daddr, 6 if family == 10 else 4),
                int(v.dport),
            )
            rcvbuf = max(int(v.rcvbuf) for v in values)
            socks[(int(k.tgid), int(k.sk))] = (ident, _counters(values), _sparse(values), rcvbuf)
        stats_map = bpf[b"lat_stats"]
        stats = {name: sum(int(v) for v in stats_map[ctypes.c_int(i)]) for i, name in enumerate(STATS)}
        stack = _sparse(bpf[b"lat_stack"][ctypes.c_int(0)])
        return Totals(procs, maxima, socks, stats, stack)

    def delta(self, previous: Totals, current: Totals) -> LatencySample:
        processes = []
        for pid, (comm, counters, hist) in sorted(current.procs.items()):
            before = previous.procs.get(pid)
            d = _delta((counters, hist), (before[1], before[2]) if before else None)
            if d is not None:
                (reads, nbytes, count), buckets = d
                processes.append(
                    ProcLatency(pid, comm, reads, nbytes, count, buckets, current.maxima.get(pid, 0))
                )
        sockets = []
        for (pid, sk), (ident, counters, hist, rcvbuf) in current.socks.items():
            was = previous.socks.get((pid, sk))
            d = _delta((counters, hist), (was[1], was[2]) if was else None)
            if d is not None:
                (reads, nbytes, count), buckets = d
                sockets.append(SockLatency(pid, *ident, reads, nbytes, count, buckets, rcvbuf or None))
        return LatencySample(
            processes=tuple(processes),
            sockets=tuple(sorted(sockets, key=lambda s: (s.pid, s.sport, s.dport))),
            unmatched=current.stats["unmatched"] - previous.stats["unmatched"],
            coarsened=current.stats["coarsened"] - previous.stats["coarsened"],
            stack=tuple(
                (i, n - previous.stack.get(i, 0))
                for i, n in sorted(current.stack.items())
                if n > previous.stack.get(i, 0)
            ),
            stack_unknown=current.stats["stack_unknown"] - previous.stats["stack_unknown"],
        )
