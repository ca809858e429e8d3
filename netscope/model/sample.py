"""Raw samples: what the probes and /proc readers saw over one interval, as immutable data.

Why a separate layer: only raw samples are recorded; live view and replay recompute everything
from them through one code path (the model). Every count here is per interval, not cumulative.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# A probe no view needs stays attached this long before it is detached: flipping between panes
# recompiles nothing.
PROBE_LINGER_S = 30.0


class ProbeState(StrEnum):
    IDLE = "idle"  # not attached: nothing on screen (or in the headless output) needs it
    PENDING = "pending"
    STARTING = "starting"
    LIVE = "live"
    FAILED = "failed"
    STOPPED = "stopped"
    OFF = "off"  # --no-bpf: this run loads no BPF program at all


@dataclass(frozen=True)
class ProbeStatus:
    name: str
    state: ProbeState
    error: str = ""
    lost_events: int = 0
    # runs of its programs the kernel skipped (one was already running on that CPU), cumulative
    recursion_misses: int = 0
    not_counted: int = 0  # events a full bounded map had no room for, cumulative
    evicted: int = 0  # entries a bounded table took from a live owner for another, cumulative
    detail: str = ""  # progress while starting, e.g. "compiling napi.bpf.c"
    sample_rate: int = 1  # 1 in N of its per-packet runs did the whole work (bpf_src/sampler.h)
    window_every: int = 1  # its hooks' window comes one interval in this many; the others carry it


@dataclass(frozen=True)
class HostInfo:
    host: str
    kernel: str
    cpus: tuple[int, ...]  # online CPU ids
    boot_time: float  # UNIX epoch seconds
    netns: int = 0  # inode of netscope's own network namespace


@dataclass(frozen=True)
class IrqCount:
    """One IRQ line over the interval, from irq:irq_handler_entry/exit."""

    irq: int
    per_cpu: tuple[int, ...]  # indexed like HostInfo.cpus
    time_ns: tuple[int, ...]


@dataclass(frozen=True)
class ProcIrqCount:
    """One IRQ line over the interval, from /proc/interrupts: the kernel's count, with or without BPF."""

    irq: int
    per_cpu: tuple[int, ...]  # indexed like HostInfo.cpus


@dataclass(frozen=True)
class ProcSoftirqCpu:
    """One CPU's softirq runs per vector over the interval, from /proc/softirqs."""

    cpu: int
    runs: tuple[int, ...]  # indexed like Sample.softirq_names


@dataclass(frozen=True)
class ProcCpuTime:
    """One CPU's time in interrupts over the interval, from /proc/stat (the kernel's own account,
    in ticks): free to read, every interval."""

    cpu: int
    softirq_ns: int
    hardirq_ns: int  # stays 0 on kernels without IRQ time accounting


@dataclass(frozen=True)
class SoftirqCpu:
    """One CPU's softirq vectors (indexed by vector number) over the interval. Raises and runs are
    exact; time_ns is estimated from sampled runs (`timed`: the runs it stands for) and the waits are
    those of sampled raises."""

    cpu: int
    raises: tuple[int, ...]
    runs: tuple[int, ...]
    time_ns: tuple[int, ...]
    wait_ns_sum: tuple[int, ...]
    wait_count: tuple[int, ...]
    wait_ns_max: tuple[int, ...]
    timed: tuple[int, ...] | None = None  # None: a recording from before sampling (every run timed)


@dataclass(frozen=True)
class NapiInstance:
    """One NAPI instance over the interval (ifindex 0: a CPU's backlog), from napi:napi_poll."""

    netns: int
    ifindex: int
    ifname: str
    napi_id: int
    polls: tuple[int, ...]  # per CPU, indexed like HostInfo.cpus
    packets: tuple[int, ...]
    budget_exhausted: tuple[int, ...]
    work_hist: tuple[int, ...]  # all CPUs: polls with work 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+
    streak_hist: tuple[int, ...]  # runs of full-budget polls that ended: 1, 2-3, 4-7, 8+


@dataclass(frozen=True)
class QueueCount:
    """Packets and bytes through one device queue over the interval (net:netif_receive_skb and
    net:net_dev_start_xmit), in any network namespace."""

    netns: int
    ifindex: int
    ifname: str
    queue: int  # -1: the driver recorded no RX queue
    tx: bool
    packets: int
    bytes: int


@dataclass(frozen=True)
class QdiscStats:
    """One qdisc of a device, as `tc -s qdisc` counts it: packets, bytes, drops, requeues and
    overlimits per interval; what it holds (qlen, backlog) at the read; the limit in force and the
    knob that sets it ("limit": the qdisc's own option, "txqueuelen": the device's, for
    pfifo_fast)."""

    handle: int
    parent: int  # TC_H_ROOT (0xFFFFFFFF): the device's root
    kind: str
    packets: int
    bytes: int
    drops: int
    requeues: int
    overlimits: int
    qlen: int
    backlog: int
    limit: int | None
    limit_unit: str  # "packets" | "bytes" | "" (no limit known)
    limit_knob: str = "limit"

    @property
    def root(self) -> bool:
        return self.parent == TC_H_ROOT


TC_H_ROOT = 0xFFFFFFFF
QDISC_COUNTERS = ("packets", "bytes", "drops", "requeues", "overlimits")  # QdiscStats' per interval


@dataclass(frozen=True)
class DeviceStats:
    """One device's own counters (netlink stats64, ethtool rings, qdisc, BQL), per interval."""

    netns: int
    ifindex: int
    ifname: str
    driver: str
    rx_ring: int | None  # None: the driver has no ring settings (n/a)
    rx_ring_max: int | None
    tx_ring: int | None
    tx_ring_max: int | None
    rx_packets: int
    tx_packets: int
    rx_missed: int
    rx_over: int
    rx_fifo: int
    rx_dropped: int
    tx_dropped: int
    qdisc_drops: int | None
    bql: tuple[tuple[int, int, int], ...]  # (tx queue, inflight bytes, limit bytes), now
    queue_napi: tuple[tuple[str, int, int], ...] = ()  # ("rx"|"tx", queue, napi id), netdev genl
    qstats: tuple[tuple[str, int, str, int], ...] = ()  # ("rx"|"tx", queue, counter, per interval)
    rx_bytes: int | None = None  # None: a recording from before netscope read them
    tx_bytes: int | None = None
    rx_queues: int = 0  # the device's RX and TX queues (0: unknown)
    tx_queues: int = 0
    master: int = 0  # the bridge or bond it is a port of (0: none): its packets show there again
    kind: str = ""  # "veth", "loopback", "bridge"... (rtnetlink's kind); "" for a plain NIC
    gro: bool | None = None  # GRO on (ethtool -k); None: not said, or an older recording
    qdisc_qlen: int = 0  # packets in its root qdisc at the read's end (a gauge; 0 in older recordings)
    qdiscs: tuple[QdiscStats, ...] = ()  # every qdisc of the device, the root first
    txqueuelen: int | None = None  # `ip link ... qlen`; None: not said, or an older recording


@dataclass(frozen=True)
class SoftnetCpu:
    """/proc/net/softnet_stat for one CPU, per interval."""

    cpu: int
    processed: int
    dropped: int
    time_squeeze: int


@dataclass(frozen=True)
class SnmpCount:
    """A loss counter of /proc/net/snmp, netstat or snmp6 (this network namespace), per interval."""

    group: str  # "Udp", "TcpExt", "Ip6"...
    name: str  # "NoPorts", "ListenDrops"...
    count: int


@dataclass(frozen=True)
class NetnsSnmp:
    """The counters the stage balance reads (model/balance.py), of one network namespace, per
    interval: read in the same pass into the namespace as its devices' stats64."""

    netns: int
    counts: tuple[SnmpCount, ...]
    # Packets IP counted in (InReceives) while its devices were read, at both ends of the interval:
    # how far the two sides of the device stage may be apart (a busy box preempts the reader).
    read_skew: int = 0


@dataclass(frozen=True)
class IrqLine:
    """An IRQ line's identity: /proc/interrupts name mapped to a device and queue."""

    irq: int
    name: str
    device: str = ""
    queue: str = ""


@dataclass(frozen=True)
class DropReasonCount:
    """Exact count of one drop reason over the interval, per CPU."""

    reason: int  # raw value: subsystem id in the high 16 bits
    name: str  # the running kernel's name, e.g. NO_SOCKET
    subsystem: str  # "" for the core reasons
    per_cpu: tuple[int, ...]


@dataclass(frozen=True)
class DropBucket:
    """Drops sharing reason, code location, protocol and device, per CPU."""

    reason: int
    location: int
    symbol: str  # function+0xoff from /proc/kallsyms
    protocol: int  # ETH_P_*
    ifindex: int
    ifname: str
    netns: int  # network namespace inode
    per_cpu: tuple[int, ...]
    sk_ino: int = 0  # the socket it was dropped at (its inode; 0: none, or an older recording)
    sk_cgroup: int = 0  # that socket's cgroup v2 id (sk_cgrp_data; 0: unknown)


@dataclass(frozen=True)
class DropEvent:
    """One logged drop (the log is rate-limited in the kernel; counts are not)."""

    ts: float  # UNIX epoch seconds
    cpu: int
    reason: int
    name: str
    subsystem: str
    symbol: str
    protocol: int
    ifname: str
    netns: int
    l4proto: int  # IPPROTO_*, 0 when not IP
    saddr: str
    daddr: str
    sport: int
    dport: int


@dataclass(frozen=True)
class DropsSample:
    reasons: tuple[DropReasonCount, ...]
    buckets: tuple[DropBucket, ...]
    events: tuple[DropEvent, ...]
    logged: int  # events written to the log in the interval
    suppressed: int  # over the log's rate limit (counted in `reasons`, not logged)
    lost: int  # the ring buffer was full
    unbucketed: int  # counted by reason, but the breakdown map was full
    log_rate: int  # the log's limit, events per second


@dataclass(frozen=True)
class QdiscWait:
    """How long a device's sampled packets waited in its qdisc (enqueue to dequeue), per interval."""

    netns: int
    ifindex: int
    buckets: tuple[tuple[int, int], ...]  # PROC_BITS buckets (ns), weighted by the sample


@dataclass(frozen=True)
class TcpConn:
    """One TCP connection's socket on this box over the interval (tcp.bpf.c): its events, one by
    one, and what a sample of the segments it received saw (the state at the last: None when none
    was sampled in the interval)."""

    netns: int
    family: int  # 4 or 6
    laddr: str
    lport: int
    raddr: str
    rport: int
    retransmits: int
    resets_sent: int
    resets_received: int
    exceed_buf: int  # sock:sock_exceed_buf_limit: TCP's memory over a limit (tcp_mem)
    rcv_space_adjust: int  # receive-buffer autotuning runs (one per RTT of a reader)
    rcvbuf_grow: int  # ... that grew sk_rcvbuf
    segments: int  # received, estimated from the sample (weighted)
    zero_rcv_wnd: int  # ... when its own window was 0 (its reader let the buffer fill)
    zero_snd_wnd: int  # ... when the peer's window was 0 (the peer's reader is slow)
    srtt_us: int | None
    snd_cwnd: int | None  # segments
    snd_ssthresh: int | None
    rcv_wnd: int | None  # bytes it advertises
    snd_wnd: int | None  # bytes the peer advertised
    rcvbuf: int | None  # sk_rcvbuf, bytes
    window_clamp: int | None


@dataclass(frozen=True)
class TcpSample:
    conns: tuple[TcpConn, ...]  # (events of those a full table could not take: the probe's not_counted)


@dataclass(frozen=True)
class ProcLatency:
    """Copy latency of one reading process over the interval (sock:sk_data_ready -> sock_recv_length)."""

    pid: int  # tgid
    comm: str
    reads: int  # every read
    bytes: int  # bytes of every read
    count: int  # reads with a known arrival (the histogram's total)
    buckets: tuple[tuple[int, int], ...]  # (bucket index, reads); NS_LAT_PROC_BITS sub-buckets
    max_ns: int
    # Data queued on the sockets it read last (sock:sk_data_ready with new data: for UDP its
    # datagrams), estimated from the sampled arrivals (exact at 1 in 1); 0 in older recordings.
    arrivals: int = 0
    cgroup_id: int = 0  # the cgroup v2 id it read from (0: not known: none of its reads timed yet)


@dataclass(frozen=True)
class ProcSend:
    """What one process sent through its sockets over the interval (sock:sock_send_length)."""

    pid: int  # tgid
    comm: str
    sends: int  # sendmsg calls that sent something (estimated where sampled)
    bytes: int
    cgroup_id: int  # the cgroup v2 directory's inode it sent from (0: not known)


@dataclass(frozen=True)
class SockLatency:
    """Copy latency of one socket as read by one process over the interval."""

    pid: int
    protocol: int  # IPPROTO_TCP / IPPROTO_UDP
    saddr: str  # local
    sport: int
    daddr: str  # remote ("0.0.0.0" / "::" for an unconnected UDP socket)
    dport: int
    reads: int
    bytes: int
    count: int
    buckets: tuple[tuple[int, int], ...]  # NS_LAT_SOCK_BITS sub-buckets
    rcvbuf: int | None = None  # sk_rcvbuf, bytes (SO_RCVBUF as the kernel keeps it); None: older recording


@dataclass(frozen=True)
class LatencySample:
    processes: tuple[ProcLatency, ...]
    sockets: tuple[SockLatency, ...]
    coarsened: int  # times a socket's ring of sampled arrivals filled and kept every other one
    arrivals: int | None = None  # data-ready wakeups with new data, all sockets (from the samples)
    # (socket inode, its cgroup v2 id, arrivals) of sockets no process read yet: user space finds
    # the process holding each (/proc), else its container by the cgroup
    unread_arrivals: tuple[tuple[int, int, int], ...] = ()
    evicted: int = 0  # live sockets the bounded table stopped following to follow others
    untimed: int = 0  # sampled arrivals left untimed: read before they were stamped, or raced
    uncounted: int = 0  # reads not counted (a slot changing hands on another CPU, a full ring buffer)
    # The share of the interval the reads' hook was on: below 1 (a duty cycle), reads and bytes are
    # what it counted scaled up to the interval, estimates.
    reads_watched: float = 1.0


@dataclass(frozen=True)
class StackSample:
    """Device-to-socket time of sampled packets: net:netif_receive_skb to sock:sk_data_ready."""

    buckets: tuple[tuple[int, int], ...]  # PROC_BITS buckets
    followed: int  # sampled skbs seen queued on their socket (the histogram's total)
    unfollowed: int  # sampled skbs that reached no socket's queue before the next one entered


@dataclass(frozen=True)
class FlowCount:
    """One flow (5-tuple in one network namespace) over the interval, as parsed in BPF."""

    netns: int
    family: int
    proto: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    rx_packets: int
    rx_bytes: int
    cpus: tuple[int, ...]  # CPUs that received it
    queues: tuple[int, ...]  # RX queues it came in on (-1: none recorded)
    drops: tuple[tuple[str, int], ...]  # (drop reason, count)
    first_seen: float  # UNIX epoch seconds
    last_seen: float
    ifindex: int = 0  # the device it came in on, in its namespace (0: unknown)


@dataclass(frozen=True)
class FlowEvent:
    """One packet of the watched flow (the flow screen), received or dropped."""

    ts: float  # UNIX epoch seconds
    cpu: int
    queue: int  # -1: none recorded
    length: int
    reason: str  # the drop reason; "" for a received packet
    symbol: str  # where it was dropped


@dataclass(frozen=True)
class FlowsOther:
    """The flows of an interval past the top N, summed: the rows and this add up to the totals."""

    flows: int = 0
    rx_packets: int = 0
    rx_bytes: int = 0
    drops: tuple[tuple[str, int], ...] = ()  # (drop reason, count), most first


@dataclass(frozen=True)
class FlowsSample:
    flows: tuple[FlowCount, ...]  # in full: the busiest N the probe was asked for, and the watched
    filtered: int  # packets the filter left out
    filter: str  # the filter expression in force ("" for none)
    # The interval's other flows, summed (with the packets of flows the table could not hold).
    rest: FlowsOther = FlowsOther()
    not_held: int = 0  # packets of flows the full kernel table could not hold (in `rest`)
    not_held_drops: int = 0  # drops the full kernel table could not hold (not in `rest`)
    # Packets softnet processed that the duty cycle's window saw too little of to attribute (in `rest`)
    unseen: int = 0
    events: tuple[FlowEvent, ...] = ()  # packets of the watched flow, oldest first
    events_lost: int = 0
    events_skipped: int = 0  # the watched flow's packets past the events' budget, not sent one by one
    watched: tuple[int, int, str, int, str, int] | None = None  # netns, proto, src, sport, dst, dport


@dataclass(frozen=True)
class ProcessFacts:
    """A process netscope saw receive, as /proc tells it at the interval's end: its cgroup v2 path
    (which container or unit it is in), its network namespace and how many sockets it holds."""

    pid: int
    comm: str
    cgroup: str  # the `0::` line of /proc/PID/cgroup ("" where it has none)
    netns: int  # inode of /proc/PID/ns/net
    sockets: int  # file descriptors that are sockets


@dataclass(frozen=True)
class SocketOwner:
    """A socket of netscope's own namespace and its process (psutil), for flows not read yet."""

    proto: int  # 6 or 17
    laddr: str
    lport: int
    raddr: str  # "" when not connected
    rport: int
    pid: int
    comm: str


@dataclass(frozen=True)
class ProgramCost:
    """One BPF program of netscope's over the interval (bpf_stats, through /proc/self/fdinfo)."""

    probe: str
    program: str
    runs: int
    run_time_ns: int


@dataclass(frozen=True)
class OwnCost:
    """What netscope costs the box over the interval."""

    cpu_pct: float  # of one CPU
    rss_bytes: int
    programs: tuple[ProgramCost, ...]  # over the last interval bpf_stats measured
    bpf_stats: bool  # there is a measurement (kernel.bpf_stats_enabled was on for an interval)
    measured_interval_s: float = 0.0  # the interval `programs` cover
    measured_age_s: float = 0.0  # how long before this sample that interval ended
    # What bpf_stats' own two clock reads add to every run it measures (measured at start with a
    # program that does nothing): not a cost of netscope's programs when bpf_stats is off.
    clock_ns: float = 0.0
    # What the kernel holds for netscope's BPF maps (their memlock; the flow tables' at their
    # fullest, as the interval ended).
    map_bytes: int = 0

    def bpf_ns(self) -> float:
        """Time in netscope's programs over the measured interval, less bpf_stats' own clock reads
        (paid only while it measures: not netscope's cost)."""
        runs = sum(p.runs for p in self.programs)
        return max(0.0, sum(p.run_time_ns for p in self.programs) - runs * self.clock_ns)

    def bpf_cpu_share(self, interval_s: float) -> float | None:
        """netscope's BPF programs as a share of one CPU (0.03: 3%), over the interval bpf_stats
        last measured (`interval_s` when it does not say); None before any measurement."""
        if not self.bpf_stats:
            return None
        return self.bpf_ns() / ((self.measured_interval_s or interval_s) * 1e9)


@dataclass(frozen=True)
class Sample:
    ts: float  # UNIX epoch seconds at the interval's end
    interval_s: float  # measured, monotonic clock
    softirq_names: tuple[str, ...]  # vector number -> kernel's name (/proc/softirqs)
    irq_lines: tuple[IrqLine, ...]
    softnet: tuple[SoftnetCpu, ...]
    probes: tuple[ProbeStatus, ...]
    hardirq: tuple[IrqCount, ...] | None = None  # None: probe not live for the whole interval
    softirq: tuple[SoftirqCpu, ...] | None = None
    napi: tuple[NapiInstance, ...] | None = None
    drops: DropsSample | None = None
    queues: tuple[QueueCount, ...] | None = None
    latency: LatencySample | None = None
    stack: StackSample | None = None
    flows: FlowsSample | None = None
    sends: tuple[ProcSend, ...] | None = None
    tcp: TcpSample | None = None
    qdisc_wait: tuple[QdiscWait, ...] | None = None
    socket_owners: tuple[SocketOwner, ...] = ()
    processes: tuple[ProcessFacts, ...] = ()  # readers and owners of sockets with drops (/proc)
    socket_pids: tuple[tuple[int, int], ...] = ()  # (socket inode, pid) of the sockets with drops
    # (cgroup id, its v2 path) of the senders' cgroups and of the sockets packets were dropped at
    cgroups: tuple[tuple[int, str], ...] = ()
    # The cgroup v2 paths of containers seen before whose directory was removed in the interval (a
    # container's end); None where not watched (older recordings)
    cgroups_gone: tuple[str, ...] | None = None
    # (container id or pod uid, its name) where the runtime's state files name it (sources/runtimes.py)
    container_names: tuple[tuple[str, str], ...] = ()
    cost: OwnCost | None = None
    devices: tuple[DeviceStats, ...] = ()
    netns_names: tuple[tuple[int, str], ...] = ()  # (inode, name) for namespaces named in the sample
    # Per-packet hooks (softirq timing, NAPI, queues, flows) run one interval in `detail_every`;
    # in the others their parts are None.
    detail_every: int = 1
    detail_measured: bool = True
    # The kernel's own counts every interval, whether or not the BPF hooks ran: what the views fall
    # back on when the irq probe's data is None.
    proc_interrupts: tuple[ProcIrqCount, ...] = ()
    proc_softirqs: tuple[ProcSoftirqCpu, ...] = ()
    proc_cpu_times: tuple[ProcCpuTime, ...] = ()
    snmp: tuple[SnmpCount, ...] = ()  # every loss counter this kernel has, zero or not
    netns_snmp: tuple[NetnsSnmp, ...] = ()  # per namespace read with its devices (the balance's)
    tunables: tuple[tuple[str, str], ...] = ()  # knobs the findings name, their values now
    # The kernel's counters whose deltas here span more than the interval, because their last read
    # failed: (source, seconds since its last good read). Their rates divide by that.
    spans: tuple[tuple[str, float], ...] = ()
    # Counter sources that could not be read this interval: their counts are absent here and come
    # with the next good read (spans). No finding is drawn from such an interval.
    read_failed: tuple[str, ...] = ()


# Counter sources a read of which can fail (Sample.spans, Sample.read_failed).
LOOKBACK = 600  # intervals the TUI keeps to look back at: 10 minutes at 1 s (--look-back)
SOFTNET, SNMP, CPU_TIMES, PROC_COUNTS, DEVICES = "softnet", "snmp", "cpu_times", "interrupts", "devices"


def span_s(sample: Sample, source: str) -> float:
    """The seconds the counts of `source` in this sample span: the interval, or more when the read
    before failed."""
    return next((seconds for name, seconds in sample.spans if name == source), sample.interval_s)


def rate_of(sample: Sample, probe: str) -> int:
    """1 in how many per-packet runs the probe sampled over the interval (1: every one, exact)."""
    return next((p.sample_rate for p in sample.probes if p.name == probe), 1)


def check_shape(sample: Sample, cpus: tuple[int, ...]) -> None:
    """Raise ValueError when per-CPU or per-vector tuples do not fit the host (a corrupt recording)."""
    for count in sample.hardirq or ():
        if len(count.per_cpu) != len(cpus) or len(count.time_ns) != len(cpus):
            raise ValueError(f"IRQ {count.irq} has {len(count.per_cpu)} per-CPU counts for {len(cpus)} CPUs")
    for soft in sample.softirq or ():
        for field in (
            soft.raises,
            soft.runs,
            soft.time_ns,
            soft.wait_ns_sum,
            soft.wait_count,
            soft.wait_ns_max,
        ):
            if len(field) != len(sample.softirq_names):
                raise ValueError(
                    f"CPU {soft.cpu} has {len(field)} softirq vectors, names list {len(sample.softirq_names)}"
                )
