"""Latency probe (bpf_src/latency.bpf.c): how long received data waited on its socket before the
reader copied it, per reading process and socket, as log-linear histograms built in the kernel from
sampled reads. Reads and bytes per socket are exact while the reads' hook is on all the time; when a
duty cycle has it on for part of an interval (a flood), they are what it counted scaled by the share
of the interval it was on (`reads_watched`). Arrivals are estimated from the sampled ones."""

from __future__ import annotations

import ctypes
import mmap
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netscope.model.sample import LatencySample, ProcLatency, SockLatency
from netscope.probes import cdefs
from netscope.probes.base import Alive, Probe, address_text, drop_keys, map_max, process_gone
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

READS = "sock_recv_length"  # the reads' hook: it closes a pairing, and counts
# How long the reads' hook outlasts a duty cycle's window: twice the last interval's longest wait, at
# least DRAIN_MIN_S; doubled (up to DRAIN_MAX_S) while sampled arrivals go unpaired.
DRAIN_MIN_S = 0.01
DRAIN_MAX_S = 1.0
WATCHED_ALL = 0.999  # of the interval: the reads' hook was on all of it (timers take a moment)
SOCKETS_MAX = 8192  # slots of lat_slots: a power of two (two ways per set)
STATS = cdefs.stats("LAT")  # NS_LAT_STAT_*, in index order
PROCS_MAX = 4096  # reading processes with a histogram
# struct lat_slot (bpf_src/netscope.h), three cache lines: sk, gen, protocol, family, sport, dport,
# saddr, daddr, ino | arrivals, last_target, cgroup | reads, bytes, udp_read, tgid.
SLOT = struct.Struct("<QIHHHH4x16s16sQ" + "QI4xQ40x" + "QQQI36x")
CLAIMING = 1  # NS_LAT_CLAIMING: a slot's sk while it is being given to a socket
RETIRED = struct.Struct("<I4x")  # struct lat_retired: the slot's index, then the slot
# Sockets the table stops following (closed ones, mostly) between two reads: 200 bytes each.
RETIRED_PAGES = 128

Hist = tuple[tuple[int, int], ...]
Ident = tuple[int, str, int, str, int]  # protocol, local address, port, remote address, port
SlotKey = tuple[int, int, int]  # index, sk, gen


@dataclass(frozen=True)
class Slot:
    """One followed socket's counts, cumulative: reads and bytes exact, arrivals estimated from the
    sampled ones (each counted times its weight)."""

    sk: int
    ino: int  # with sk, the socket: a later one at its address has another inode
    tgid: int
    reads: int
    bytes: int
    arrivals: int
    ident: Ident
    cgroup: int = 0  # the socket's own cgroup v2 id (sk_cgrp_data; 0: unknown)


@dataclass(frozen=True)
class Totals:
    slots: dict[SlotKey, Slot]
    procs: dict[int, tuple[str, int, dict[int, int], int]]  # tgid -> comm, sampled reads, buckets, cgroup
    maxima: dict[int, int]  # tgid -> max ns since the last read (read and reset)
    # (tgid, sk, ino) -> sampled reads, buckets, and sk_rcvbuf (the largest of the CPUs' copies: each
    # holds the value at the socket's last sampled read on that CPU)
    socks: dict[tuple[int, int, int], tuple[int, dict[int, int], int]]
    stats: dict[str, int]
    watched: float = 1.0  # the share of the time since the previous totals the reads' hook was on


def sparse(values: Iterable[Any]) -> dict[int, int]:
    """Per-CPU bucket arrays summed, keeping the non-zero buckets."""
    out: dict[int, int] = {}
    for per_cpu in values:
        for i, n in enumerate(per_cpu.buckets):
            if n:
                out[i] = out.get(i, 0) + int(n)
    return out


def hist_delta(now: dict[int, int], before: dict[int, int]) -> Hist:
    return tuple((i, n - before.get(i, 0)) for i, n in sorted(now.items()) if n > before.get(i, 0))


def read_slots(raw: bytes | mmap.mmap) -> dict[SlotKey, Slot]:
    """The followed sockets (TCP and UDP) of lat_slots' values (the array's memory, or a copy):
    most slots are free, so only the used ones are decoded."""
    out = {}
    with memoryview(raw) as view:
        whole = len(view) - len(view) % SLOT.size
        with view[:whole].cast("Q") as words:
            used = [i for i, sk in enumerate(words[:: SLOT.size // 8].tolist()) if sk > CLAIMING]
    for index in used:
        key, slot = decode_slot(index, raw, index * SLOT.size)
        if slot is not None:
            out[key] = slot
    return out


def decode_slot(index: int, raw: bytes | mmap.mmap, offset: int) -> tuple[SlotKey, Slot | None]:
    """One struct lat_slot at `offset` of `raw`; None for a socket netscope does not follow."""
    fields = SLOT.unpack_from(raw, offset)
    sk, gen, protocol, family, sport, dport, sa, da, ino, arrivals, _, cgroup, reads, nbytes, _, tgid = fields
    if not protocol:
        return (index, sk, gen), None
    version = 6 if family == 10 else 4
    ident = (protocol, address_text(sa, version), sport, address_text(da, version), dport)
    return (index, sk, gen), Slot(sk, ino, tgid, reads, nbytes, arrivals, ident, cgroup)


def _comm(pid: int) -> str:
    """A process's name from /proc, for a reader none of whose reads was sampled yet."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class LatencyProbe(Probe[LatencySample]):
    name = "latency"
    sample_field = "latency"
    filtered = True
    source_file = "latency.bpf.c"
    tracepoints = (("sock", "sk_data_ready"), ("sock", "sock_recv_length"))
    per_packet = ("sock_recv_length", "sk_data_ready")
    sampled = True
    scoped = True  # the waits of readers out of the user's scope stay out of the histograms
    closing = (READS,)
    drain_s = DRAIN_MAX_S  # until waits were seen: the reads stay on to the interval's end
    _slots: mmap.mmap | None = None
    hooks_per_run = 2.4  # an arrival, and about 1.4 reads with it
    _watch_from: float | None = None  # when the reads' hook was attached, while it is
    _watched_s = 0.0  # how long it was on since the last totals, before that
    _totals_at: float | None = None

    def _attach(self, tp: str) -> None:
        super()._attach(tp)
        if tp == READS:
            self._watch_from = time.monotonic()

    def _detach(self, tp: str) -> None:
        super()._detach(tp)
        if tp == READS and self._watch_from is not None:
            self._watched_s += time.monotonic() - self._watch_from
            self._watch_from = None

    def forget_scratch(self, bpf: Any, hooks: list[str]) -> None:
        """The reads' hook is about to be on again: a new watch. Reads it missed are unknown, so the
        arrivals sampled before it went off are stale: their rings are emptied, untimed
        (latency.bpf.c). Before the attach: a read between the attach and a later bump paired a
        stale arrival with a count that missed reads (a wait of 600 ms in CI, the reader's period
        100 ms). A UDP target is relative to the read count, so arrivals from now on need no reset."""
        if READS in hooks:
            epoch = bpf[b"lat_epoch"]
            epoch[ctypes.c_int(0)] = ctypes.c_uint32((int(epoch[ctypes.c_int(0)].value) + 1) & 0xFFFFFFFF)

    def _watched_share(self) -> float:
        """The share of the time since the last call the reads' hook was on."""
        now = time.monotonic()
        watched = self._watched_s + (now - self._watch_from if self._watch_from is not None else 0.0)
        span = now - self._totals_at if self._totals_at is not None else 0.0
        self._watched_s, self._totals_at = 0.0, now
        if self._watch_from is not None:
            self._watch_from = now
        return min(1.0, watched / span) if span > 0 else 1.0

    def defines(self) -> dict[str, int | str]:
        return {
            **kernel_offsets(kernel_btf()),
            "NS_LAT_SOCKETS": SOCKETS_MAX,
            "NS_LAT_PROCS": map_max(PROCS_MAX),
            "NS_LAT_SOCK_HISTS": map_max(SOCKETS_MAX),
            "NS_LAT_RETIRED_PAGES": RETIRED_PAGES,
        }

    def attached(self, bpf: Any) -> None:
        """The socket table, mapped: each interval reads its used slots in place, not 1.5 MB copied."""
        table = bpf[b"lat_slots"]
        size = -(-SLOT.size * int(table.max_entries) // mmap.PAGESIZE) * mmap.PAGESIZE
        self._slots = mmap.mmap(table.map_fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        self._retired: list[tuple[SlotKey, Slot]] = []
        bpf[b"lat_retired"].open_ring_buffer(self._on_retired)

    def _on_retired(self, _ctx: Any, data: Any, size: int) -> None:
        raw = ctypes.string_at(data, size)
        (index,) = RETIRED.unpack_from(raw)
        key, slot = decode_slot(index, raw, RETIRED.size)
        if slot is not None:
            self._retired.append((key, slot))

    def detached(self) -> None:
        if self._slots is not None:
            self._slots.close()
            self._slots = None

    def read_totals(self, bpf: Any) -> Totals:
        slots = read_slots(self._slots) if self._slots is not None else {}
        # Then the sockets given up since: a slot read above with its socket's counts then, or
        # given up before (its socket came and went), either way ends at these final counts.
        bpf.ring_buffer_consume()
        retired, self._retired = self._retired, []
        slots.update(retired)
        procs = {}
        for k, values in bpf[b"lat_by_proc"].items():
            comm = next((v.comm.decode(errors="replace") for v in values if v.comm), "")
            cgroup = max((int(v.cgroup_id) for v in values), default=0)
            procs[int(k.value)] = (comm, sum(int(v.count) for v in values), sparse(values), cgroup)
        maxima_map = bpf[b"lat_proc_max"]
        maxima = {int(k.value): max(int(v) for v in values) for k, values in maxima_map.items()}
        maxima_map.clear()  # a maximum is per interval: a wait landing between read and clear is lost
        socks = {}
        for k, values in bpf[b"lat_by_sock"].items():
            rcvbuf = max(int(v.rcvbuf) for v in values)
            count = sum(int(v.count) for v in values)
            socks[(int(k.tgid), int(k.sk), int(k.ino))] = (count, sparse(values), rcvbuf)
        stats_map = bpf[b"lat_stats"]
        stats = {name: sum(int(v) for v in stats_map[ctypes.c_int(i)]) for i, name in enumerate(STATS)}
        return Totals(slots, procs, maxima, socks, stats, self._watched_share())

    def map_losses(self, totals: Totals) -> tuple[int, int]:
        """Sampled reads whose process or socket histogram found no room; sockets the table
        stopped following, alive, to follow others."""
        return totals.stats["full"], totals.stats["evicted"]

    def prune_keys(self, bpf: Any, totals: Totals, alive: Alive) -> None:
        """The histograms of processes gone and of sockets no longer followed (their last counts
        were read): the tables hold the living."""
        followed = {(s.sk, s.ino) for s in totals.slots.values()}
        procs, socks = bpf[b"lat_by_proc"], bpf[b"lat_by_sock"]
        drop_keys(procs, totals.procs, process_gone, procs.Key)
        drop_keys(
            socks,
            totals.socks,
            lambda k: k[1:] not in followed or process_gone(k[0]),
            lambda k: socks.Key(tgid=k[0], sk=k[1], ino=k[2]),
        )

    def delta(self, previous: Totals, current: Totals) -> LatencySample:
        # Exact counts per socket, the interval's part of each (a slot new since the last read
        # counts from when netscope began to follow its socket).
        # While the reads' hook was on for part of the interval only, what it counted stands for
        # the whole interval.
        watched = current.watched if current.watched < WATCHED_ALL else 1.0
        scale = 1 / watched if watched > 0 else 1.0
        zero = Slot(0, 0, 0, 0, 0, 0, (0, "", 0, "", 0))
        moved: dict[SlotKey, Slot] = {}
        arrivals = 0
        arrived_by_pid: dict[int, int] = {}  # by the process that read the socket last
        unread: dict[tuple[int, int], int] = {}  # by socket (inode, cgroup), for sockets no one read yet
        for key, now in current.slots.items():
            was = previous.slots.get(key, zero)
            arrived = now.arrivals - was.arrivals
            arrivals += arrived
            if arrived and now.tgid:
                arrived_by_pid[now.tgid] = arrived_by_pid.get(now.tgid, 0) + arrived
            elif arrived and now.ino:
                unread[(now.ino, now.cgroup)] = unread.get((now.ino, now.cgroup), 0) + arrived
            if now.reads != was.reads:
                reads, nbytes = round((now.reads - was.reads) * scale), round((now.bytes - was.bytes) * scale)
                moved[key] = Slot(now.sk, now.ino, now.tgid, reads, nbytes, 0, now.ident)
        reads_by_pid: dict[int, tuple[int, int]] = {}
        for s in moved.values():
            reads, nbytes = reads_by_pid.get(s.tgid, (0, 0))
            reads_by_pid[s.tgid] = (reads + s.reads, nbytes + s.bytes)
        processes = []
        for pid in sorted(set(reads_by_pid) | set(current.procs) | set(arrived_by_pid)):
            comm, count, hist, cgroup = current.procs.get(pid, ("", 0, {}, 0))
            _, count0, hist0, _ = previous.procs.get(pid, ("", 0, {}, 0))
            if count < count0:  # deleted (its process gone) and made again: counts from zero
                count0, hist0 = 0, {}
            reads, nbytes = reads_by_pid.get(pid, (0, 0))
            if not reads and count == count0 and pid not in arrived_by_pid:
                continue
            processes.append(
                ProcLatency(
                    pid,
                    comm or _comm(pid),
                    reads,
                    nbytes,
                    count - count0,
                    hist_delta(hist, hist0),
                    current.maxima.get(pid, 0),
                    arrived_by_pid.get(pid, 0),
                    cgroup,
                )
            )
        sockets = []
        for s in moved.values():
            count, hist, rcvbuf = current.socks.get((s.tgid, s.sk, s.ino), (0, {}, 0))
            count0, hist0, _ = previous.socks.get((s.tgid, s.sk, s.ino), (0, {}, 0))
            if count < count0:
                count0, hist0 = 0, {}
            sockets.append(
                SockLatency(
                    s.tgid,
                    *s.ident,
                    s.reads,
                    s.bytes,
                    count - count0,
                    hist_delta(hist, hist0),
                    rcvbuf or None,
                )
            )
        stats = {k: current.stats[k] - previous.stats[k] for k in STATS}
        self._next_drain(current.maxima, stats)
        return LatencySample(
            processes=tuple(processes),
            sockets=tuple(sorted(sockets, key=lambda s: (s.pid, s.sport, s.dport))),
            coarsened=stats["thinned"],
            arrivals=arrivals,
            unread_arrivals=tuple((ino, cgroup, n) for (ino, cgroup), n in sorted(unread.items())),
            evicted=stats["evicted"],
            untimed=stats["untimed"],
            uncounted=stats["uncounted"],
            reads_watched=watched,
        )

    def _next_drain(self, maxima: dict[int, int], stats: dict[str, int]) -> None:
        """How long the reads' hook outlasts the next duty cycle's window: long enough for the
        arrivals sampled in it to be read, judged by the waits just seen."""
        if not stats["sampled"] and not stats["untimed"]:
            return  # nothing sampled: nothing learnt
        if stats["untimed"] > stats["sampled"]:  # most went unpaired: their reads came later
            self.drain_s = min(DRAIN_MAX_S, max(DRAIN_MIN_S, 2 * self.drain_s))
        else:
            longest = max(maxima.values(), default=0) / 1e9
            self.drain_s = min(DRAIN_MAX_S, max(DRAIN_MIN_S, 2 * longest))
