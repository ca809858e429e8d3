"""Findings: which stage of the receive path loses packets or holds them up, the evidence, and the
kernel knob that governs it with its current value.

Pure. One small rule per symptom reads one interval (a `Sample`, its CPU view, and the tunables
the live source read with it); `FindingsTracker` adds hysteresis: a finding appears the interval
its evidence does and clears only once the evidence has been gone for `CLEAR_AFTER_S`. netscope
never changes a setting itself: a finding suggests the command, the operator decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from netscope.model.balance import BOUNDARIES, StageBalance
from netscope.model.cpu import CpuView, build_cpu_view, interrupt_counts
from netscope.model.drops import device_label
from netscope.model.latency import PROC_BITS, percentile
from netscope.model.sample import (
    DEVICES,
    PROC_COUNTS,
    SOFTNET,
    DropReasonCount,
    HostInfo,
    Sample,
    TcpConn,
    span_s,
)

# Thresholds, per second over one interval (README "Findings" lists them).
BACKLOG_DROPS_PER_S = 1.0  # any backlog drop is a packet lost by the kernel
BACKLOG_CRITICAL_PER_S = 1000.0
TIME_SQUEEZE_PER_S = 10.0  # NET_RX ran out of budget or time and left work for later
RING_OVERRUNS_PER_S = 1.0  # rx_missed + rx_over + rx_fifo of a device
RCVBUF_DROPS_PER_S = 1.0
NO_SOCKET_PER_S = 5.0  # a stray broadcast now and then stays quiet
NETFILTER_DROPS_PER_S = 1.0
QDISC_DROPS_PER_S = 1.0  # a qdisc's drops: packets the box meant to send and did not
TCP_RETRANSMITS_PER_S = 5.0  # a connection's segments sent again
IRQ_CONCENTRATION_PER_S = 1000.0  # NIC hardirqs of a busy machine...
IRQ_CONCENTRATION_SHARE = 0.9  # ...nearly all on one CPU
CLEAR_AFTER_S = 10.0  # a finding clears once its evidence has been gone this long

# Reasons by the kernel's names (enum skb_drop_reason), so no number is typed in.
SOCKET_RCVBUFF = "SOCKET_RCVBUFF"
NO_SOCKET = "NO_SOCKET"
NETFILTER_DROP = "NETFILTER_DROP"
CPU_BACKLOG = "CPU_BACKLOG"
IPPROTO_NAMES = {6: "tcp", 17: "udp"}
IPPROTO_TCP = 6


class Severity(Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


Evidence = tuple[tuple[str, int | float | str], ...]


@dataclass(frozen=True)
class Finding:
    id: str  # stable per rule and subject, e.g. "backlog_drops:cpu1"
    severity: Severity
    stage: str  # receive-path stage: ring, hardirq, softirq, stack, socket, netscope
    summary: str
    evidence: Evidence  # the numbers that triggered it, over `window_s`
    knob: str  # what governs it, e.g. "net.core.netdev_max_backlog"
    current: str  # its value now, read live ("" when unknown)
    suggestion: str  # a command or step the operator can copy
    pane: str  # where the evidence is shown: home, rings, cpus, drops, latency, flows
    target: str = ""  # the row there: "cpu:1", "reason:6", "device:NETNS:IFINDEX", "pid:42"

    @property
    def knob_now(self) -> str:
        """'net.core.netdev_max_backlog = 16', or the knob alone when its value is unknown."""
        return f"{self.knob} = {self.current}" if self.current else self.knob


@dataclass(frozen=True)
class ActiveFinding:
    finding: Finding  # as its latest evidence showed it
    since: float  # UNIX time of the first interval with evidence
    last_seen: float  # ... and of the latest
    quiet_s: float  # how long its evidence has been gone (0 while it lasts)


@dataclass(frozen=True)
class FindingInput:
    info: HostInfo
    sample: Sample
    cpu: CpuView
    tunables: Mapping[str, str]
    silent: tuple[StageBalance, ...] = ()  # the previous interval's confirmed silent losses


def _per_s(count: float, sample: Sample, source: str | None = None) -> float:
    """Per second over the interval, or over what the counts of `source` span (a failed read)."""
    seconds = span_s(sample, source) if source else sample.interval_s
    return count / seconds if seconds > 0 else 0.0


def _reason(sample: Sample, name: str) -> DropReasonCount | None:
    """A core drop reason's count in the interval (None while the probe is not live or it did not
    occur)."""
    return (
        next((r for r in sample.drops.reasons if r.name == name and not r.subsystem), None)
        if sample.drops
        else None
    )


def _reason_count(sample: Sample, name: str) -> int:
    r = _reason(sample, name)
    return sum(r.per_cpu) if r else 0


def _reason_target(sample: Sample, name: str) -> str:
    """Where Enter leads for a reason: its row on the Drops pane."""
    r = _reason(sample, name)
    return f"reason:{r.reason if r else None}"


def cpumask_has(mask: str, cpu: int) -> bool:
    """Whether a sysfs cpumask ("00000000,00000002": hex, 32-bit words, highest first) has `cpu`."""
    try:
        return bool(int(mask.replace(",", ""), 16) >> cpu & 1)
    except ValueError:
        return False


def raised(current: str, default: int, factor: int, high: int) -> int | None:
    """A value to suggest for a knob: `factor` times the one in force (`default` when unknown, an
    older recording), at most `high`; never lower than the one in force. None when that is
    already `high` or more: raising it further is not the fix, and the finding names the next knob."""
    if not current.isdigit():
        return default
    value = int(current)
    if value >= high:
        return None
    return min(high, max(default, value * factor))


# Past these, raising the knob is not the fix (a longer queue is more latency, not more throughput).
BACKLOG_HIGH = 1 << 16  # net.core.netdev_max_backlog, packets per CPU
BUDGET_HIGH, BUDGET_USECS_HIGH = 2400, 16_000  # net.core.netdev_budget, netdev_budget_usecs
RMEM_MAX_HIGH = 256 << 20  # net.core.rmem_max, bytes (the kernel's own cap is INT_MAX / 2)


def backlog_drops(i: FindingInput) -> Iterable[Finding]:
    """softnet `dropped`: the per-CPU backlog (netif_rx, RPS) was full."""
    # The reason counts on the CPU that enqueued and freed the packet: with RPS, another CPU than
    # the one whose backlog is full. So each finding shows every CPU's count.
    backlog = _reason_count(i.sample, CPU_BACKLOG)
    limit = i.tunables.get("net.core.netdev_max_backlog", "")
    for s in i.sample.softnet:
        rate = _per_s(s.dropped, i.sample, SOFTNET)
        if rate < BACKLOG_DROPS_PER_S:
            continue
        evidence: list[tuple[str, int | float | str]] = [
            ("cpu", s.cpu),
            ("softnet_dropped", s.dropped),
            ("per_s", round(rate, 1)),
            ("window_s", round(span_s(i.sample, SOFTNET), 3)),
        ]
        if backlog:
            evidence.append(("drop_reason_CPU_BACKLOG", backlog))
        steering = [
            k.removeprefix("rps_cpus:") + "=" + v
            for k, v in i.tunables.items()
            if k.startswith("rps_cpus:") and cpumask_has(v, s.cpu)
        ]
        if steering:
            evidence.append(("rps_cpus", ", ".join(steering)))
        bigger = raised(limit, 1000, 4, BACKLOG_HIGH)
        spread = f"spread RPS (rps_cpus of the queues steering to CPU {s.cpu}) over more CPUs"
        yield Finding(
            id=f"backlog_drops:cpu{s.cpu}",
            severity=Severity.CRITICAL if rate >= BACKLOG_CRITICAL_PER_S else Severity.WARNING,
            stage="softirq",
            summary=f"CPU {s.cpu}'s backlog is full: {rate:,.0f} packets/s dropped before the stack",
            evidence=tuple(evidence),
            knob="net.core.netdev_max_backlog",
            current=limit,
            suggestion=(
                f"sysctl -w net.core.netdev_max_backlog={bigger}; {spread}"
                if bigger is not None
                else f"{spread}, or more RX queues (ethtool -L): the backlog is long already"
            ),
            pane="cpus",
            target=f"cpu:{s.cpu}",
        )


def time_squeeze(i: FindingInput) -> Iterable[Finding]:
    """softnet `time_squeeze`: NET_RX stopped with work left (budget or time used up)."""
    budget = i.tunables.get("net.core.netdev_budget", "")
    usecs = i.tunables.get("net.core.netdev_budget_usecs", "")
    more_budget, more_usecs = raised(budget, 600, 2, BUDGET_HIGH), raised(usecs, 4000, 2, BUDGET_USECS_HIGH)
    raise_them = " ".join(
        f"net.core.{knob}={value}"
        for knob, value in (("netdev_budget", more_budget), ("netdev_budget_usecs", more_usecs))
        if value is not None
    )
    exhausted = {r.cpu: r.napi_budget_exhausted_pct for r in i.cpu.rows}
    for s in i.sample.softnet:
        rate = _per_s(s.time_squeeze, i.sample, SOFTNET)
        if rate < TIME_SQUEEZE_PER_S:
            continue
        evidence: list[tuple[str, int | float | str]] = [
            ("cpu", s.cpu),
            ("time_squeeze", s.time_squeeze),
            ("per_s", round(rate, 1)),
            ("window_s", round(span_s(i.sample, SOFTNET), 3)),
        ]
        if (pct := exhausted.get(s.cpu)) is not None:
            evidence.append(("napi_budget_exhausted_pct", round(pct, 1)))
        yield Finding(
            id=f"time_squeeze:cpu{s.cpu}",
            severity=Severity.WARNING,
            stage="softirq",
            summary=f"NET_RX on CPU {s.cpu} runs out of budget: {rate:,.0f} squeezes/s, packets wait",
            evidence=tuple(evidence),
            knob="net.core.netdev_budget / netdev_budget_usecs",
            current=f"{budget} / {usecs}" if budget and usecs else "",
            suggestion=(
                (f"sysctl -w {raise_them}; " if raise_them else "")
                + "check the IRQ affinity of the queues on this CPU (/proc/irq/N/smp_affinity_list) "
                "and the ring sizes (ethtool -g DEV)"
            ),
            pane="cpus",
            target=f"cpu:{s.cpu}",
        )


def ring_overruns(i: FindingInput) -> Iterable[Finding]:
    """A device's rx_missed / rx_over / rx_fifo: the NIC had no free descriptor."""
    for d in i.sample.devices:
        lost = d.rx_missed + d.rx_over + d.rx_fifo
        rate = _per_s(lost, i.sample, DEVICES)
        if rate < RING_OVERRUNS_PER_S:
            continue
        ring = f"{d.rx_ring}" if d.rx_ring is not None else "n/a"
        ring_max = f"{d.rx_ring_max}" if d.rx_ring_max is not None else "n/a"
        queues = len({q for kind, q, _ in d.queue_napi if kind == "rx"})
        grow = f"ethtool -G {d.ifname} rx {d.rx_ring_max}; " if d.rx_ring != d.rx_ring_max else ""
        yield Finding(
            id=f"ring_overruns:{d.netns}:{d.ifname}",
            severity=Severity.WARNING,
            stage="ring",
            summary=f"{d.ifname}'s RX ring overflows: {rate:,.0f} frames/s lost in the NIC",
            evidence=(
                ("device", d.ifname),
                ("rx_missed", d.rx_missed),
                ("rx_over", d.rx_over),
                ("rx_fifo", d.rx_fifo),
                ("per_s", round(rate, 1)),
                ("rx_queues", queues),
                ("window_s", round(span_s(i.sample, DEVICES), 3)),
            ),
            knob=f"RX ring size of {d.ifname} (ethtool -g)",
            current=f"{ring} of max {ring_max}",
            suggestion=f"{grow}spread its queues' IRQs over more CPUs (ethtool -L {d.ifname} combined N)",
            pane="rings",
            target=f"device:{d.netns}:{d.ifindex}",
        )


def _ports(sample: Sample, reason: str) -> Counter[tuple[int, int, int]]:
    """(netns, l4 protocol, destination port) of the logged drops with `reason`: the log is a
    rate-limited sample of the drops, so shares, not counts."""
    return (
        Counter((e.netns, e.l4proto, e.dport) for e in sample.drops.events if e.name == reason and e.dport)
        if sample.drops
        else Counter()
    )


@dataclass(frozen=True)
class PortShare:
    netns: int
    proto: int
    port: int
    drops: int  # the reason's count times this port's share of its logged drops
    logged: int  # logged drops of the reason to this port
    of_logged: int  # ... of all its logged drops


def _by_port(i: FindingInput, reason: str, threshold_per_s: float) -> tuple[int, list[PortShare]] | None:
    """A reason's count in the interval when at or over `threshold_per_s`, and the three ports its
    logged drops went to most, each with its share of the count."""
    total = _reason_count(i.sample, reason)
    if _per_s(total, i.sample) < threshold_per_s:
        return None
    ports = _ports(i.sample, reason)
    logged = sum(ports.values())
    return total, [
        PortShare(netns, proto, port, round(total * n / logged), n, logged)
        for (netns, proto, port), n in ports.most_common(3)
    ]


def rcvbuf_drops(i: FindingInput) -> Iterable[Finding]:
    """SOCKET_RCVBUFF: datagrams arrived at a socket whose receive buffer was full."""
    counted = _by_port(i, SOCKET_RCVBUFF, RCVBUF_DROPS_PER_S)
    if counted is None:
        return
    total, ports = counted
    readers = _readers(i.sample)
    rmem = (
        i.tunables.get("net.core.rmem_default", "?"),
        i.tunables.get("net.core.rmem_max", "?"),
    )  # "?": an older recording
    rmem_max = raised(rmem[1], 8 << 20, 2, RMEM_MAX_HIGH)
    for share in ports or [PortShare(0, 17, 0, total, 0, 0)]:  # no log: one finding for them all
        netns, proto, port, drops = share.netns, share.proto, share.port, share.drops
        owner = readers.get(port)
        who = f"{owner.comm} (pid {owner.pid})" if owner else "its reader"
        rcvbuf = owner.rcvbuf if owner else None
        evidence: list[tuple[str, int | float | str]] = [
            ("port", port),
            ("protocol", IPPROTO_NAMES.get(proto, str(proto))),
            ("drops", drops),
            ("per_s", round(_per_s(drops, i.sample), 1)),
            ("window_s", round(i.sample.interval_s, 3)),
        ]
        if owner:
            evidence += [("pid", owner.pid), ("comm", owner.comm)]
            if owner.copy_p99_us is not None:
                evidence.append(("copy_p99_us", owner.copy_p99_us))
            if rcvbuf is not None:
                evidence.append(("so_rcvbuf", rcvbuf))
        buffer = f"{rcvbuf:,}-byte " if rcvbuf is not None else ""
        current = f"{rmem[0]} / {rmem[1]}" if "?" not in rmem else ""
        if rcvbuf is not None:
            current += f"{'; ' if current else ''}its SO_RCVBUF {rcvbuf}"
        yield Finding(
            id=f"rcvbuf_drops:{netns}:{port}",
            severity=Severity.WARNING,
            stage="socket",
            summary=(
                f"{who} reads port {port} too slowly: its {buffer}receive buffer overflows, "
                f"{_per_s(drops, i.sample):,.0f} datagrams/s dropped"
                if port
                else f"sockets' receive buffers overflow: {_per_s(total, i.sample):,.0f} datagrams/s dropped"
            ),
            evidence=tuple(evidence),
            knob="net.core.rmem_default / rmem_max (the socket's SO_RCVBUF)",
            current=current,
            suggestion=(
                f"read faster in {who}, or give its socket a bigger SO_RCVBUF (up to rmem_max); "
                f"sysctl -w net.core.rmem_max={rmem_max} to allow more"
                if rmem_max is not None
                else f"read faster in {who}: more reading threads or sockets (SO_REUSEPORT), or a "
                "bigger SO_RCVBUF within rmem_max, which is high already"
            ),
            pane="latency" if owner else "drops",
            target=f"pid:{owner.pid}" if owner else _reason_target(i.sample, SOCKET_RCVBUFF),
        )


@dataclass(frozen=True)
class Reader:
    """Who reads a port, as far as netscope can tell."""

    pid: int
    comm: str
    copy_p99_us: float | None = None  # from the copy-latency probe
    rcvbuf: int | None = None  # sk_rcvbuf at its last read, bytes (copy-latency probe)


def _readers(sample: Sample) -> dict[int, Reader]:
    """Local port -> the process seen reading it (copy-latency probe: with its copy p99 and its
    socket's receive buffer), else the owner of the socket psutil sees in netscope's namespace."""
    out = {o.lport: Reader(o.pid, o.comm) for o in sample.socket_owners if o.pid}
    if sample.latency is not None:
        processes = {p.pid: p for p in sample.latency.processes}
        for s in sample.latency.sockets:
            p = processes.get(s.pid)
            p99 = percentile(p.buckets, 99, PROC_BITS) if p else None
            out[s.sport] = Reader(
                s.pid, p.comm if p else "?", round(p99 / 1000, 1) if p99 is not None else None, s.rcvbuf
            )
    return out


def no_socket(i: FindingInput) -> Iterable[Finding]:
    """NO_SOCKET: traffic to ports nobody listens on."""
    counted = _by_port(i, NO_SOCKET, NO_SOCKET_PER_S)
    for share in counted[1] if counted else ():
        netns, proto, port, drops = share.netns, share.proto, share.port, share.drops
        rate = _per_s(drops, i.sample)
        if rate < NO_SOCKET_PER_S:
            continue
        name = IPPROTO_NAMES.get(proto, str(proto))
        yield Finding(
            id=f"no_socket:{netns}:{name}:{port}",
            severity=Severity.WARNING,
            stage="socket",
            summary=f"{name.upper()} to port {port} finds no socket: {rate:,.0f} packets/s dropped",
            evidence=(
                ("port", port),
                ("protocol", name),
                ("drops", drops),
                ("per_s", round(rate, 1)),
                ("logged_share", f"{share.logged} of {share.of_logged} logged NO_SOCKET drops"),
                ("window_s", round(i.sample.interval_s, 3)),
            ),
            knob=f"a listener on {name} port {port}",
            current="none",
            suggestion=f"ss -l{name[0]}np 'sport = :{port}'  # who should listen; or stop the sender",
            pane="drops",
            target=_reason_target(i.sample, NO_SOCKET),
        )


def _in_netns_of(rule: str) -> str:
    """The command prefix that runs in the namespace a rule was read in ("... in netns NAME"; a
    namespace without a name is "pid N comm"): none for netscope's own."""
    _, sep, netns = rule.partition(" in netns ")
    if not sep:
        return ""
    words = netns.split()
    if len(words) >= 2 and words[0] == "pid" and words[1].isdigit():
        return f"nsenter -t {words[1]} -n "
    return f"ip netns exec {netns} "


def netfilter_drops(i: FindingInput) -> Iterable[Finding]:
    """NETFILTER_DROP: a firewall rule dropped the packets."""
    reason = _reason(i.sample, NETFILTER_DROP)
    total = sum(reason.per_cpu) if reason else 0
    rate = _per_s(total, i.sample)
    if reason is None or rate < NETFILTER_DROPS_PER_S:
        return
    buckets = i.sample.drops.buckets if i.sample.drops else ()
    where = Counter(b.symbol.split("+")[0] for b in buckets if b.reason == reason.reason)
    ports = _ports(i.sample, NETFILTER_DROP)
    evidence: list[tuple[str, int | float | str]] = [
        ("drops", total),
        ("per_s", round(rate, 1)),
        ("window_s", round(i.sample.interval_s, 3)),
    ]
    if where:
        evidence.append(("location", where.most_common(1)[0][0]))
    if ports:
        (_, proto, port), _n = ports.most_common(1)[0]
        evidence.append(("top_dport", f"{IPPROTO_NAMES.get(proto, proto)}/{port}"))
    rules = sorted(
        ((k.removeprefix("nft_drop:"), v) for k, v in i.tunables.items() if k.startswith("nft_drop:")),
        key=lambda kv: -int(kv[1].split()[-1]) if kv[1].split()[-1].isdigit() else 0,
    )
    inside = _in_netns_of(rules[0][0] if rules else "")
    yield Finding(
        id="netfilter_drops",
        severity=Severity.WARNING,
        stage="stack",
        summary=f"a netfilter rule drops {rate:,.0f} packets/s",
        evidence=tuple(evidence),
        knob="the nftables / iptables ruleset (drop rules and their counters, where the drops happen)",
        current="; ".join(f"{rule}: {counter}" for rule, counter in rules[:3]),
        suggestion=f"{inside}nft -a list ruleset  # drop rules, their counters; {inside}iptables -L -v -n",
        pane="drops",
        target=f"reason:{reason.reason}",
    )


def irq_concentration(i: FindingInput) -> Iterable[Finding]:
    """A NIC's hardirqs nearly all on one CPU while the machine has others."""
    if len(i.info.cpus) < 2:
        return
    names = {line.irq: line for line in i.sample.irq_lines}
    per_cpu = [0] * len(i.info.cpus)
    lines = []
    for count in interrupt_counts(i.sample) or ():
        line = names.get(count.irq)
        if line is None or not line.device:
            continue
        lines.append(line)
        per_cpu = [a + b for a, b in zip(per_cpu, count.per_cpu, strict=False)]
    total = sum(per_cpu)
    irqs = PROC_COUNTS if i.sample.proc_softirqs else None  # /proc's counts, else the hooks'
    if _per_s(total, i.sample, irqs) < IRQ_CONCENTRATION_PER_S:
        return
    busiest = max(range(len(per_cpu)), key=per_cpu.__getitem__)
    share = per_cpu[busiest] / total
    if share < IRQ_CONCENTRATION_SHARE:
        return
    cpu = i.info.cpus[busiest]
    affinity = ", ".join(
        f"{line.irq}={i.tunables[f'irq/{line.irq}/smp_affinity_list']}"
        for line in lines
        if f"irq/{line.irq}/smp_affinity_list" in i.tunables
    )
    devices = sorted({line.device for line in lines})
    yield Finding(
        id=f"irq_concentration:cpu{cpu}",
        severity=Severity.WARNING,
        stage="hardirq",
        summary=f"{share:.0%} of NIC interrupts ({', '.join(devices)}) land on CPU {cpu}",
        evidence=(
            ("cpu", cpu),
            ("share_pct", round(100 * share, 1)),
            ("hardirqs_per_s", round(_per_s(total, i.sample, irqs), 1)),
            ("window_s", round(i.sample.interval_s, 3)),
        ),
        knob="IRQ affinity (/proc/irq/N/smp_affinity_list)",
        current=affinity,
        suggestion="systemctl start irqbalance, or echo CPUS > /proc/irq/N/smp_affinity_list per queue",
        pane="cpus",
        target=f"cpu:{cpu}",
    )


def netscope_itself(i: FindingInput) -> Iterable[Finding]:
    """netscope's own blind spots in this interval (not its running totals: a finding clears when
    the losses stop): events its ring buffers lost, reads its copy latency could not count,
    per-packet figures sampled."""
    s = i.sample
    losses = (
        (
            "drops",
            s.drops.lost if s.drops else 0,
            "the drop log missed {n:,} drops (its ring buffer was full): the log undercounts them, "
            "the drop counts are exact",
            "--drop-log-rate (drops logged per second)",
            "netscope --drop-log-rate 200  # fewer logged, none lost; counts stay exact",
            "drops",
        ),
        (
            "flows",
            s.flows.events_lost if s.flows else 0,
            "the watched flow's packet list missed {n:,} packets (its ring buffer was full); the "
            "flow's counts are exact",
            "the watched flow (its screen)",
            "read the flow's counts; its packet list shows what the buffer held",
            "flows",
        ),
        (
            "latency",
            s.latency.uncounted if s.latency else 0,
            "copy latency did not count {n:,} reads (a socket changing hands on another CPU, or a "
            "full ring buffer of closed sockets): its reads undercount",
            "",
            "none needed if rare; many: sockets churn faster than netscope reads (--interval)",
            "latency",
        ),
    )
    for probe, n, text, knob, suggestion, pane in losses:
        if n:
            yield Finding(
                id=f"netscope_lost:{probe}",
                severity=Severity.WARNING,
                stage="netscope",
                summary=f"netscope: {text.format(n=n)}",
                evidence=(("probe", probe), ("lost", n), ("window_s", round(s.interval_s, 3))),
                knob=knob,
                current="",
                suggestion=suggestion,
                pane=pane,
            )
    if i.sample.detail_every > 1:
        yield Finding(
            id="netscope_sampling",
            severity=Severity.INFO,
            stage="netscope",
            summary=f"per-packet figures are measured one interval in {i.sample.detail_every}",
            evidence=(("detail_every", i.sample.detail_every),),
            knob="--detail-every",
            current=str(i.sample.detail_every),
            suggestion="netscope snapshot --detail-every 1  # every interval, at a higher cost",
            pane="home",
        )


def silent_loss(i: FindingInput) -> Iterable[Finding]:
    """A stage that lost more than its read noise with no counter naming the loss, and the next
    interval did not give it back (`i.silent`, the timeline's): the packets left the counter on one
    side and never reached the one on the other (an XDP or tc program, a driver or a module
    consuming them without a drop reason)."""
    names = dict(i.sample.netns_names)
    for row in i.silent:
        before, after = BOUNDARIES[row.stage]
        where = "this namespace" if row.netns == i.info.netns else names.get(row.netns, f"netns {row.netns}")
        yield Finding(
            id=f"silent_loss:{row.netns}:{row.stage}",
            severity=Severity.WARNING,
            stage="stack",
            summary=(
                f"{row.beyond_noise:,} packets vanished in the {row.stage} stage ({where}): "
                f"between {before} and {after}, with no counter naming them"
            ),
            evidence=(
                ("stage", row.stage),
                ("netns", row.netns),
                ("in", row.in_),
                ("out", row.out),
                ("lost", row.lost_total),
                ("unaccounted", row.unaccounted),
                ("noise", row.noise),
                ("in_counter", before),
                ("out_counter", after),
            ),
            knob="none: no kernel counter names this loss",
            current="",
            suggestion="look for XDP or tc programs on the devices (bpftool net), then trace with pwru",
            pane="home",
        )


def _in_netns(sample: Sample, netns: int, host_netns: int) -> str:
    """The command prefix that runs in namespace `netns` (none for netscope's own)."""
    if netns == host_netns:
        return ""
    name = dict(sample.netns_names).get(netns, "")
    words = name.split()
    if len(words) >= 2 and words[0] == "pid" and words[1].isdigit():
        return f"nsenter -t {words[1]} -n "
    return f"ip netns exec {name} " if name else f"nsenter --net=/proc/<pid in netns {netns}>/ns/net "


FIFO_KINDS = ("pfifo", "bfifo", "pfifo_head_drop")


def qdisc_drops(i: FindingInput) -> Iterable[Finding]:
    """A qdisc dropped what the box meant to send: its queue reached the limit in force (the
    device's txqueuelen for pfifo_fast, the qdisc's own `limit` otherwise), or its policy dropped
    (a shaper over its rate, an egress filter)."""
    for d in i.sample.devices:
        for q in d.qdiscs:
            rate = _per_s(q.drops, i.sample, DEVICES)
            if rate < QDISC_DROPS_PER_S or not (q.root or q.kind == "clsact"):
                continue
            where = device_label(d.ifname, d.netns, i.info.netns, dict(i.sample.netns_names))
            inside = _in_netns(i.sample, d.netns, i.info.netns)
            unit = "p" if q.limit_unit == "packets" else "b"
            limit = f"{q.limit}{unit}" if q.limit is not None else ""
            evidence: list[tuple[str, int | float | str]] = [
                ("device", where),
                ("qdisc", f"{q.kind} {q.handle >> 16:x}:"),
                ("drops", q.drops),
                ("per_s", round(rate, 1)),
                ("qlen", q.qlen),
                ("backlog_bytes", q.backlog),
                ("overlimits", q.overlimits),
                ("window_s", round(span_s(i.sample, DEVICES), 3)),
            ]
            if q.limit is not None:
                evidence.append(("limit", limit))
            if q.kind == "pfifo_fast" or q.limit_knob == "txqueuelen":
                knob, current = f"txqueuelen of {where}", str(q.limit) if q.limit is not None else ""
                bigger = raised(current, 1000, 4, 100_000)
                suggestion = (
                    f"{inside}ip link set dev {d.ifname} txqueuelen {bigger}  # a longer queue, more "
                    "latency; or find what sends faster than the device (the Processes pane)"
                )
            elif q.kind == "clsact":
                knob, current = f"egress tc filters on {where}", ""
                suggestion = f"{inside}tc -s filter show dev {d.ifname} egress  # the filter that drops"
            else:
                knob, current = f"{q.kind} limit on {where}", limit
                change = (
                    f"{inside}tc qdisc change dev {d.ifname} root {q.kind} limit {2 * q.limit}"
                    if q.kind in FIFO_KINDS and q.limit
                    else f"{inside}tc qdisc show dev {d.ifname}  # then: tc qdisc change ... limit N"
                )
                shaper = (
                    "; a shaper drops by design once its rate is reached: raise the rate or send less"
                    if q.overlimits
                    else ""
                )
                suggestion = change + shaper
            yield Finding(
                id=f"qdisc_drops:{d.netns}:{d.ifindex}:{q.handle}",
                severity=Severity.WARNING,
                stage="tx",
                summary=f"the {q.kind} qdisc of {where} drops {rate:,.0f} packets/s it was given to send",
                evidence=tuple(evidence),
                knob=knob,
                current=current,
                suggestion=suggestion,
                pane="tx",
                target=f"device:{d.netns}:{d.ifindex}",
            )


def bql_limited(i: FindingInput) -> Iterable[Finding]:
    """BQL stopped a TX queue (its bytes in flight at the limit) while its qdisc holds packets:
    the driver takes no more until the NIC completes what it has; the qdisc queues meanwhile."""
    for d in i.sample.devices:
        root = next((q for q in d.qdiscs if q.root), None)
        full = [(queue, inflight, limit) for queue, inflight, limit in d.bql if inflight >= limit > 0]
        if not full or root is None or not root.qlen:
            continue
        where = device_label(d.ifname, d.netns, i.info.netns, dict(i.sample.netns_names))
        queue, inflight, limit = full[0]
        yield Finding(
            id=f"bql_limited:{d.netns}:{d.ifindex}",
            severity=Severity.WARNING if root.drops else Severity.INFO,
            stage="tx",
            summary=(
                f"BQL holds {where}'s TX queue {queue} at its limit ({limit:,} bytes in flight) while "
                f"its {root.kind} qdisc queues {root.qlen} packets"
            ),
            evidence=(
                ("device", where),
                ("tx_queues_at_limit", ", ".join(str(q) for q, _, _ in full)),
                ("queue", queue),
                ("inflight_bytes", inflight),
                ("limit_bytes", limit),
                ("qdisc_qlen", root.qlen),
                ("qdisc_backlog_bytes", root.backlog),
                ("qdisc_drops", root.drops),
            ),
            knob=f"BQL of {where} tx-{queue} (/sys/class/net/{d.ifname}/queues/tx-{queue}/byte_queue_limits)",
            current=f"limit {limit}",
            suggestion=(
                "the NIC sends what it can (a link at line rate) or completes late (interrupt "
                f"coalescing: ethtool -c {d.ifname}); to allow more in flight: echo N > "
                f"/sys/class/net/{d.ifname}/queues/tx-{queue}/byte_queue_limits/limit_min"
            ),
            pane="tx",
            target=f"device:{d.netns}:{d.ifindex}",
        )


def _conn_label(c: TcpConn) -> str:
    return f"{c.laddr}:{c.lport} ↔ {c.raddr}:{c.rport}"


def _drops_here(sample: Sample, c: TcpConn) -> Counter[str]:
    """The logged drops on this box of either direction of a connection, by reason."""
    ends = {(c.laddr, c.lport, c.raddr, c.rport), (c.raddr, c.rport, c.laddr, c.lport)}
    return Counter(
        e.name
        for e in (sample.drops.events if sample.drops else ())
        if e.l4proto == IPPROTO_TCP and (e.saddr, e.sport, e.daddr, e.dport) in ends
    )


def tcp_retransmits(i: FindingInput) -> Iterable[Finding]:
    """A connection sends segments again: they, or their ACKs, were lost on the path; where the
    loss is on this box, the drop log names its reasons."""
    for c in i.sample.tcp.conns if i.sample.tcp else ():
        rate = _per_s(c.retransmits, i.sample)
        if rate < TCP_RETRANSMITS_PER_S:
            continue
        here = _drops_here(i.sample, c)
        reasons = ", ".join(f"{name} {n}" for name, n in here.most_common(3))
        evidence: list[tuple[str, int | float | str]] = [
            ("connection", _conn_label(c)),
            ("netns", c.netns),
            ("retransmits", c.retransmits),
            ("per_s", round(rate, 1)),
            ("window_s", round(i.sample.interval_s, 3)),
        ]
        if c.srtt_us is not None:
            evidence += [
                ("srtt_us", c.srtt_us),
                ("snd_cwnd", c.snd_cwnd or 0),
                ("snd_ssthresh", c.snd_ssthresh or 0),
            ]
        if reasons:
            evidence.append(("logged_drops_here", reasons))
        inside = _in_netns(i.sample, c.netns, i.info.netns)
        yield Finding(
            id=f"tcp_retransmits:{c.netns}:{c.laddr}:{c.lport}:{c.raddr}:{c.rport}",
            severity=Severity.WARNING,
            stage="tcp",
            summary=(
                f"TCP {_conn_label(c)} sends {rate:,.0f} segments/s again: "
                + ("this box drops its packets" if reasons else "its packets are lost beyond this box")
            ),
            evidence=tuple(evidence),
            knob="the path's loss: drops on this box (their drop reasons), else the network beyond it",
            current=f"dropped here: {reasons}" if reasons else "no drop of it logged on this box",
            suggestion=(
                "the Drops pane (d): the rule or queue that drops them"
                if reasons
                else f"{inside}ss -ti dst {c.raddr} dport = :{c.rport}  # its retrans counters; "
                f"then mtr {c.raddr}"
            ),
            pane="drops" if reasons else "flows",
        )


def rcv_window_limited(i: FindingInput) -> Iterable[Finding]:
    """A connection's receiver lets its receive buffer fill: the window it advertises falls to 0
    and the sender waits. Seen at the receiver (its own window 0) or at the sender (the peer's)."""
    rmem = i.tunables.get("net.ipv4.tcp_rmem", "")
    for c in i.sample.tcp.conns if i.sample.tcp else ():
        own, peers = c.zero_rcv_wnd, c.zero_snd_wnd
        if not own and not peers:
            continue
        receiver = f"{c.laddr}:{c.lport}" if own else f"{c.raddr}:{c.rport}"
        buffers = (
            f"its SO_RCVBUF {c.rcvbuf}, window_clamp {c.window_clamp}" if own and c.rcvbuf is not None else ""
        )
        current = "; ".join(v for v in (f"tcp_rmem {rmem}" if rmem else "", buffers) if v)
        high = rmem.split()[-1] if rmem.split() else ""
        bigger = raised(high, 6 << 20, 2, RMEM_MAX_HIGH)
        yield Finding(
            id=f"rcv_window_limited:{c.netns}:{c.laddr}:{c.lport}:{c.raddr}:{c.rport}",
            severity=Severity.WARNING,
            stage="tcp",
            summary=(
                f"the reader at {receiver} lets its TCP receive buffer fill: its window falls to 0 "
                f"and {'the sender' if own else 'this sender'} waits ({_conn_label(c)})"
            ),
            evidence=(
                ("connection", _conn_label(c)),
                ("netns", c.netns),
                ("zero_window_segments", own or peers),  # sampled segments, weighted
                ("seen_at", "receiver" if own else "sender"),
                ("rcv_wnd", c.rcv_wnd if c.rcv_wnd is not None else ""),
                ("rcvbuf", c.rcvbuf if c.rcvbuf is not None else ""),
                ("window_s", round(i.sample.interval_s, 3)),
            ),
            knob="net.ipv4.tcp_rmem (autotuning's bounds) and the socket's receive buffer",
            current=current,
            suggestion=(
                f"read faster at {receiver}; a fixed SO_RCVBUF turns autotuning off: leave it unset, or "
                + (
                    f"sysctl -w net.ipv4.tcp_rmem='{' '.join(rmem.split()[:2])} {bigger}'"
                    if bigger is not None and len(rmem.split()) == 3
                    else "raise tcp_rmem's maximum"
                )
            ),
            pane="flows",
        )


RULES: tuple[Callable[[FindingInput], Iterable[Finding]], ...] = (
    silent_loss,
    qdisc_drops,
    bql_limited,
    tcp_retransmits,
    rcv_window_limited,
    ring_overruns,
    irq_concentration,
    backlog_drops,
    time_squeeze,
    netfilter_drops,
    no_socket,
    rcvbuf_drops,
    netscope_itself,
)


def find(
    info: HostInfo, sample: Sample, cpu: CpuView | None = None, silent: tuple[StageBalance, ...] = ()
) -> tuple[Finding, ...]:
    """Every rule's findings for one interval (`cpu`: its CPU view, when already built; `silent`:
    the stages whose silent loss this interval confirmed, `confirm_silent`); none from an interval
    where a counter could not be read (its counts come with the next read)."""
    if sample.read_failed:
        return ()
    i = FindingInput(info, sample, cpu or build_cpu_view(sample, info.cpus), dict(sample.tunables), silent)
    return tuple(f for rule in RULES for f in rule(i))


class FindingsTracker:
    """Hysteresis over `find`: a finding lasts until its evidence has been gone `clear_after_s`."""

    def __init__(self, clear_after_s: float = CLEAR_AFTER_S) -> None:
        self.clear_after_s = clear_after_s
        self._active: dict[str, ActiveFinding] = {}

    def update(self, ts: float, found: Iterable[Finding]) -> tuple[ActiveFinding, ...]:
        for f in found:
            was = self._active.get(f.id)
            self._active[f.id] = ActiveFinding(f, was.since if was else ts, ts, 0.0)
        for key, a in list(self._active.items()):
            quiet = ts - a.last_seen
            if quiet >= self.clear_after_s:
                del self._active[key]
            elif quiet > 0:
                self._active[key] = replace(a, quiet_s=quiet)
        return self.active

    @property
    def active(self) -> tuple[ActiveFinding, ...]:
        """Worst first: by severity, then the most packets per second, then the longest-standing."""
        return tuple(sorted(self._active.values(), key=_worst_first))


def _worst_first(a: ActiveFinding) -> tuple[int, float, float, str]:
    rate = dict(a.finding.evidence).get("per_s", 0.0)
    return (a.finding.severity.rank, -float(rate), a.since, a.finding.id)


def finding_json(a: ActiveFinding) -> dict[str, object]:
    f = a.finding
    return {
        "id": f.id,
        "severity": f.severity.value,
        "stage": f.stage,
        "summary": f.summary,
        "evidence": dict(f.evidence),
        "knob": f.knob,
        "current": f.current,
        "suggestion": f.suggestion,
        "since": round(a.since, 3),
        "quiet_s": round(a.quiet_s, 3),
    }
