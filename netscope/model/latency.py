"""Copy latency: percentiles from the kernel's log-linear histograms, per process and socket. Pure.

A value v (ns) falls in bucket v below 2^B; else, with m = floor(log2 v), in
(m - B + 1) * 2^B + (the B bits after v's leading one). Mirrors bucket() in bpf_src/hist.h.
A bucket spans 1/2^B of its octave, so its midpoint is within 2^-(B+1) of any value in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netscope.model.sample import LatencySample, Sample, SockLatency, StackSample, rate_of

PROC_BITS = 4  # NS_LAT_PROC_BITS
SOCK_BITS = 3  # NS_LAT_SOCK_BITS
PERCENTILES = (50.0, 90.0, 99.0)
# Colours a slow reader: p99 above these (ns) is shown as warning / bad.
SLOW_NS = 10_000_000
VERY_SLOW_NS = 100_000_000


def bucket_of(value: int, bits: int) -> int:
    if value < (1 << bits):
        return value
    m = value.bit_length() - 1
    return ((m - bits + 1) << bits) + ((value >> (m - bits)) & ((1 << bits) - 1))


def bucket_range(index: int, bits: int) -> tuple[int, int]:
    """[low, high) of the values in a bucket."""
    if index < (1 << bits):
        return index, index + 1
    m = (index >> bits) + bits - 1
    width = 1 << (m - bits)
    low = (1 << m) + (index & ((1 << bits) - 1)) * width
    return low, low + width


def merge(histograms: Iterable[Sequence[tuple[int, int]]]) -> tuple[tuple[int, int], ...]:
    total: dict[int, int] = {}
    for hist in histograms:
        for index, count in hist:
            total[index] = total.get(index, 0) + count
    return tuple(sorted(total.items()))


def percentile(hist: Sequence[tuple[int, int]], q: float, bits: int) -> float | None:
    """The q-th percentile (ns) as the midpoint of the bucket holding it; None for no data."""
    total = sum(c for _, c in hist)
    if not total:
        return None
    rank = q / 100.0 * total
    seen = 0
    for index, count in sorted(hist):
        seen += count
        if seen >= rank:
            low, high = bucket_range(index, bits)
            return (low + high - 1) / 2.0
    low, high = bucket_range(max(i for i, _ in hist), bits)
    return (low + high - 1) / 2.0


def octave_bar(
    hist: Sequence[tuple[int, int]], bits: int, low_octave: int = 10, high_octave: int = 34
) -> list[int]:
    """Counts per power-of-two octave from 2^low (about 1 µs) to 2^high (about 17 s), for a bar."""
    counts = [0] * (high_octave - low_octave + 1)
    for index, count in hist:
        low, _ = bucket_range(index, bits)
        octave = max(low, 1).bit_length() - 1
        counts[min(max(octave, low_octave), high_octave) - low_octave] += count
    return counts


@dataclass(frozen=True)
class Percentiles:
    count: int
    bytes: int
    p50_ns: float | None
    p90_ns: float | None
    p99_ns: float | None
    max_ns: int | None

    @classmethod
    def of(cls, hist: Sequence[tuple[int, int]], bits: int, nbytes: int, max_ns: int | None) -> Percentiles:
        p50, p90, p99 = (percentile(hist, q, bits) for q in PERCENTILES)
        return cls(sum(c for _, c in hist), nbytes, p50, p90, p99, max_ns)


@dataclass(frozen=True)
class SocketRow:
    label: str  # "udp 0.0.0.0:5555 ← 10.200.0.1:40000"
    stats: Percentiles  # count: its reads given a latency; bytes: of every read
    rcvbuf: int | None = None  # sk_rcvbuf at its last read, bytes; None: an older recording
    reads: int = 0  # every read in the interval
    sample_rate: int = 1
    reads_estimated: bool = False  # reads and bytes counted part of the interval, scaled up


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    comm: str
    reads: int  # in the interval, matched or not
    reads_per_s: float
    bytes_per_s: float
    stats: Percentiles
    sockets: tuple[SocketRow, ...]
    reads_estimated: bool = False  # reads and bytes counted part of the interval, scaled up
    arrivals: int = 0  # data queued on the sockets it reads (UDP: datagrams), from the samples
    cgroup_id: int = 0  # the cgroup v2 id it read from (0: not known)


@dataclass(frozen=True)
class LatencyView:
    interval_s: float
    all: Percentiles  # of the reads given a latency (1 in `sample_rate` of the arrivals is timed)
    octaves: tuple[int, ...]  # reads per octave, about 1 µs .. 17 s
    processes: tuple[ProcessRow, ...]  # slowest p99 first
    coarsened: int
    stack: Percentiles | None  # device -> socket time of sampled packets; None: not measured
    stack_unknown: int  # sampled packets that reached no socket's queue
    reads: int = 0  # every read of the interval (exact)
    arrivals: int | None = None  # data queued on sockets (exact); None: an older recording
    unread_arrivals: tuple[tuple[int, int, int], ...] = ()  # (inode, cgroup, arrivals): read by none yet
    sample_rate: int = 1  # 1 in N arrivals timed: > 1, the percentiles are from a sample
    stack_rate: int = 1
    evicted: int = 0  # live sockets the bounded table stopped following
    untimed: int = 0  # sampled arrivals left untimed (read before stamped, or raced on another CPU)
    uncounted: int = 0  # reads not counted (a slot changing hands on another CPU, a full ring buffer)
    # The share of the interval the reads were watched: below 1 (a flood's duty cycle), reads and
    # bytes are what was counted then, scaled up to the interval.
    reads_watched: float = 1.0

    @property
    def reads_estimated(self) -> bool:
        return self.reads_watched < 1.0

    @property
    def reads_per_s(self) -> float:
        return self.reads / self.interval_s


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def socket_label(s: SockLatency) -> str:
    """'udp 10.200.0.2:5555 ← 10.200.0.1:40000': local end, then the peer (for connected sockets)."""
    proto = "tcp" if s.protocol == 6 else "udp"
    peer = f" ← {_endpoint(s.daddr, s.dport)}" if s.dport else ""
    return f"{proto} {_endpoint(s.saddr, s.sport)}{peer}"


def build_latency_view(
    latency: LatencySample,
    interval_s: float,
    stack: StackSample | None = None,
    sample_rate: int = 1,
    stack_rate: int = 1,
) -> LatencyView:
    all_hist = merge(p.buckets for p in latency.processes)
    scaled = latency.reads_watched < 1.0
    rows = []
    for p in latency.processes:
        sockets = tuple(
            SocketRow(
                socket_label(s),
                Percentiles.of(s.buckets, SOCK_BITS, s.bytes, None),
                s.rcvbuf,
                s.reads,
                sample_rate,
                scaled,
            )
            for s in latency.sockets
            if s.pid == p.pid
        )
        rows.append(
            ProcessRow(
                pid=p.pid,
                comm=p.comm,
                reads=p.reads,
                reads_per_s=p.reads / interval_s,
                bytes_per_s=p.bytes / interval_s,
                stats=Percentiles.of(p.buckets, PROC_BITS, p.bytes, p.max_ns),
                sockets=tuple(sorted(sockets, key=lambda r: -(r.stats.p99_ns or 0))),
                reads_estimated=scaled,
                arrivals=p.arrivals,
                cgroup_id=p.cgroup_id,
            )
        )
    rows.sort(key=lambda r: (-(r.stats.p99_ns or 0), r.pid))
    max_all = max((p.max_ns for p in latency.processes), default=None)
    return LatencyView(
        interval_s=interval_s,
        all=Percentiles.of(all_hist, PROC_BITS, sum(p.bytes for p in latency.processes), max_all),
        octaves=tuple(octave_bar(all_hist, PROC_BITS)),
        processes=tuple(rows),
        coarsened=latency.coarsened,
        stack=Percentiles.of(stack.buckets, PROC_BITS, 0, None) if stack is not None else None,
        stack_unknown=stack.unfollowed if stack is not None else 0,
        reads=sum(p.reads for p in latency.processes),
        arrivals=latency.arrivals,
        unread_arrivals=latency.unread_arrivals,
        sample_rate=sample_rate,
        stack_rate=stack_rate,
        evicted=latency.evicted,
        untimed=latency.untimed,
        uncounted=latency.uncounted,
        reads_watched=latency.reads_watched,
    )


def latency_view(sample: Sample) -> LatencyView | None:
    """The copy latency of one sample (with the stack time, when the stack probe ran)."""
    if sample.latency is None:
        return None
    return build_latency_view(
        sample.latency, sample.interval_s, sample.stack, rate_of(sample, "latency"), rate_of(sample, "stack")
    )
