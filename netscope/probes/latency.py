"""Latency probe (bpf_src/latency.bpf.c): how long received data waited on its socket before the
reader copied it, per reading process and socket, as log-linear histograms built in the kernel."""

from __future__ import annotations

import ctypes
import ipaddress
from dataclasses import dataclass
from typing import Any

from netscope.model.sample import LatencySample, ProcLatency, SockLatency
from netscope.probes.base import Probe
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

SOCKETS_MAX = 8192
STATS = ("matched", "unmatched", "coarsened")  # NS_LAT_STAT_* order

Hist = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Totals:
    procs: dict[int, tuple[str, int, int, dict[int, int]]]  # tgid -> comm, count, bytes, buckets
    maxima: dict[int, int]  # tgid -> max ns since the last read (read and reset)
    socks: dict[tuple[int, int], tuple[tuple[int, str, int, str, int], int, int, dict[int, int]]]
    stats: dict[str, int]


def _address(family: int, raw: Any) -> str:
    data = bytes(raw)
    return ipaddress.IPv6Address(data).compressed if family == 10 else str(ipaddress.IPv4Address(data[:4]))


def _sparse(values: Any) -> dict[int, int]:
    """Per-CPU bucket arrays summed, keeping the non-zero buckets."""
    out: dict[int, int] = {}
    for per_cpu in values:
        for i, n in enumerate(per_cpu.buckets):
            if n:
                out[i] = out.get(i, 0) + int(n)
    return out


def _hist_delta(now: dict[int, int], before: dict[int, int]) -> Hist:
    return tuple((i, n - before.get(i, 0)) for i, n in sorted(now.items()) if n - before.get(i, 0) > 0)


class LatencyProbe(Probe[LatencySample]):
    name = "latency"
    source_file = "latency.bpf.c"
    tracepoints = (("sock", "sk_data_ready"), ("sock", "sock_recv_length"))

    def defines(self) -> dict[str, int]:
        return {**kernel_offsets(kernel_btf()), "NS_LAT_SOCKETS": SOCKETS_MAX}

    def read_totals(self, bpf: Any) -> Totals:
        procs = {}
        for k, values in bpf[b"lat_by_proc"].items():
            comm = next((v.comm.decode(errors="replace") for v in values if v.comm), "")
            procs[int(k.value)] = (
                comm,
                sum(int(v.count) for v in values),
                sum(int(v.bytes) for v in values),
                _sparse(values),
            )
        maxima_map = bpf[b"lat_proc_max"]
        maxima = {int(k.value): max(int(v) for v in values) for k, values in maxima_map.items()}
        maxima_map.clear()  # a maximum is per interval: a wait landing between read and clear is lost
        socks = {}
        for k, values in bpf[b"lat_by_sock"].items():
            first = values[0]
            ident = next(
                (
                    (
                        int(v.protocol),
                        _address(int(v.family), v.saddr),
                        int(v.sport),
                        _address(int(v.family), v.daddr),
                        int(v.dport),
                    )
                    for v in values
                    if v.protocol
                ),
                (int(first.protocol), "", 0, "", 0),
            )
            socks[(int(k.tgid), int(k.sk))] = (
                ident,
                sum(int(v.count) for v in values),
                sum(int(v.bytes) for v in values),
                _sparse(values),
            )
        stats_map = bpf[b"lat_stats"]
        stats = {name: sum(int(v) for v in stats_map[ctypes.c_int(i)]) for i, name in enumerate(STATS)}
        return Totals(procs, maxima, socks, stats)

    def delta(self, previous: Totals, current: Totals) -> LatencySample:
        processes = []
        for pid, (comm, count, nbytes, hist) in sorted(current.procs.items()):
            _, count0, bytes0, hist0 = previous.procs.get(pid, ("", 0, 0, {}))
            if count < count0:  # evicted (LRU) and re-created: count from zero
                count0, bytes0, hist0 = 0, 0, {}
            if count > count0:
                processes.append(
                    ProcLatency(
                        pid,
                        comm,
                        count - count0,
                        nbytes - bytes0,
                        _hist_delta(hist, hist0),
                        current.maxima.get(pid, 0),
                    )
                )
        sockets = []
        for (pid, sk), (ident, count, nbytes, hist) in current.socks.items():
            _, count0, bytes0, hist0 = previous.socks.get((pid, sk), (ident, 0, 0, {}))
            if count < count0:
                count0, bytes0, hist0 = 0, 0, {}
            if count > count0:
                proto, saddr, sport, daddr, dport = ident
                sockets.append(
                    SockLatency(
                        pid,
                        proto,
                        saddr,
                        sport,
                        daddr,
                        dport,
                        count - count0,
                        nbytes - bytes0,
                        _hist_delta(hist, hist0),
                    )
                )
        return LatencySample(
            processes=tuple(processes),
            sockets=tuple(sorted(sockets, key=lambda s: (s.pid, s.sport, s.dport))),
            unmatched=current.stats["unmatched"] - previous.stats["unmatched"],
            coarsened=current.stats["coarsened"] - previous.stats["coarsened"],
        )
