"""The CPU view: per-CPU hardirq, softirq and NAPI rates from one raw sample. Pure.

Counters first: what the kernel counts itself comes from its own counters every interval, whatever
is attached: interrupts per line (/proc/interrupts), softirq runs (/proc/softirqs), softirq time per
CPU (/proc/stat), packets processed, backlog drops and time_squeeze (softnet_stat). The hooks add
what no counter tells: handler times, softirq raises, the time per vector and the raise-to-run wait
(from sampled runs), NAPI polls (sampled). A figure whose source was not read for the whole interval
is None (shown as "–"), never 0: 0 would claim the kernel did nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from netscope.model.sample import CPU_TIMES, PROC_COUNTS, SOFTNET, Sample, rate_of, span_s

NET_TX = "NET_TX"
NET_RX = "NET_RX"


@dataclass(frozen=True)
class CpuRow:
    cpu: int | None  # None: the all-CPU total
    hardirqs_per_s: float | None
    hardirq_time_pct: float | None
    net_rx_raises_per_s: float | None
    net_rx_runs_per_s: float | None
    net_tx_raises_per_s: float | None
    net_tx_runs_per_s: float | None
    softirq_time_pct: float | None  # all vectors, % of this CPU
    net_rx_time_pct: float | None
    net_rx_wait_avg_ns: float | None  # raise -> run
    net_rx_wait_max_ns: int | None
    napi_polls_per_s: float | None
    napi_packets_per_poll: float | None
    napi_budget_exhausted_pct: float | None  # polls that used the whole budget
    time_squeeze_per_s: float | None
    backlog_drops_per_s: float | None
    processed_per_s: float | None = None  # packets the stack took in (softnet processed)
    softirq_rate: int = 1  # 1 in N softirq runs timed: > 1, its times and waits are estimates
    napi_rate: int = 1  # 1 in N NAPI polls counted: > 1, the NAPI figures are estimates


@dataclass(frozen=True)
class IrqRow:
    irq: int
    name: str
    device: str
    queue: str
    per_s: float
    per_cpu_per_s: tuple[float, ...]
    time_pct: float | None  # % of one CPU spent in this line's handler; None: counted by /proc only


@dataclass(frozen=True)
class CpuView:
    interval_s: float
    cpus: tuple[int, ...]
    rows: tuple[CpuRow, ...]
    total: CpuRow
    irqs: tuple[IrqRow, ...]  # busiest first
    softirq_rate: int = 1  # 1 in N softirq runs timed: > 1, the times and waits are estimates
    napi_rate: int = 1  # 1 in N NAPI polls counted: > 1, the NAPI figures are estimates


def _vec(names: tuple[str, ...], wanted: str) -> int | None:
    return names.index(wanted) if wanted in names else None


@dataclass(frozen=True)
class InterruptCount:
    """One IRQ line over the interval: from the irq probe's hooks, or /proc's count without times."""

    irq: int
    per_cpu: tuple[int, ...]  # indexed like HostInfo.cpus
    time_ns: tuple[int, ...] | None  # None: /proc counts, it does not time


def interrupt_counts(sample: Sample) -> tuple[InterruptCount, ...] | None:
    """Interrupts per line: the kernel's own count (/proc), with the handlers' times where the
    hardirq probe ran; the hooks' counts for a recording without /proc's; None when neither was read
    for this interval."""
    timed = {c.irq: c.time_ns for c in sample.hardirq} if sample.hardirq is not None else None
    if sample.proc_softirqs:  # /proc was read for this interval (one row per CPU, always)
        zero = tuple(0 for _ in sample.proc_softirqs)
        return tuple(
            InterruptCount(c.irq, c.per_cpu, timed.get(c.irq, zero) if timed is not None else None)
            for c in sample.proc_interrupts
        )
    if sample.hardirq is not None:
        return tuple(InterruptCount(c.irq, c.per_cpu, c.time_ns) for c in sample.hardirq)
    return None


def softirq_runs(sample: Sample) -> dict[int, tuple[int, ...]] | None:
    """Softirq runs per vector, per CPU: the kernel's own count (/proc/softirqs), else the hooks'
    (a recording without it); None when neither was read for this interval."""
    if sample.proc_softirqs:
        return {s.cpu: s.runs for s in sample.proc_softirqs}
    if sample.softirq is not None:
        return {s.cpu: s.runs for s in sample.softirq}
    return None


def _time_pct(times_ns: list[int | None], cpu_seconds: float) -> float | None:
    """Time as % of `cpu_seconds`; None when a time is unknown (a count /proc kept)."""
    if any(t is None for t in times_ns):
        return None
    return 100.0 * sum(t or 0 for t in times_ns) / (cpu_seconds * 1e9)


def _div(a: float, b: float) -> float | None:
    return float(a) / b if b else None


@dataclass(frozen=True)
class NapiCpu:
    """NAPI polls on one CPU, all instances (devices and the backlog) together."""

    cpu: int
    polls: int
    packets: int
    budget_exhausted: int


def napi_per_cpu(sample: Sample, cpus: tuple[int, ...]) -> dict[int, NapiCpu] | None:
    if sample.napi is None:
        return None
    return {
        cpu: NapiCpu(
            cpu,
            sum(n.polls[i] for n in sample.napi),
            sum(n.packets[i] for n in sample.napi),
            sum(n.budget_exhausted[i] for n in sample.napi),
        )
        for i, cpu in enumerate(cpus)
    }


def build_cpu_view(sample: Sample, cpus: tuple[int, ...]) -> CpuView:
    dt = sample.interval_s  # the hooks' figures; the kernel's counters span theirs (span_s)
    dt_softnet, dt_stat = span_s(sample, SOFTNET), span_s(sample, CPU_TIMES)
    dt_proc = span_s(sample, PROC_COUNTS) if sample.proc_softirqs else dt
    rx = _vec(sample.softirq_names, NET_RX)
    tx = _vec(sample.softirq_names, NET_TX)
    interrupts = interrupt_counts(sample)
    hard_by_cpu: dict[int, tuple[int, int | None]] | None = None
    if interrupts is not None:
        timed = sample.hardirq is not None  # the hooks time the handlers; /proc only counts
        hard_by_cpu = {
            cpu: (
                sum(c.per_cpu[i] for c in interrupts),
                sum(c.time_ns[i] for c in interrupts if c.time_ns is not None) if timed else None,
            )
            for i, cpu in enumerate(cpus)
        }
    soft = {s.cpu: s for s in sample.softirq or ()}
    runs = softirq_runs(sample)
    napi = napi_per_cpu(sample, cpus) or {}
    softnet = {s.cpu: s for s in sample.softnet}
    softirq_rate, napi_rate = rate_of(sample, "softirq"), rate_of(sample, "napi")
    # Softirq time per CPU from /proc/stat (all vectors); the hooks' for a recording without it.
    stat_ns = {t.cpu: t.softirq_ns for t in sample.proc_cpu_times} if sample.proc_cpu_times else None

    def row(cpu: int | None, members: tuple[int, ...]) -> CpuRow:
        n_cpu = len(members)
        hard = [hard_by_cpu[c] for c in members] if hard_by_cpu is not None else None
        sq = [soft[c] for c in members if c in soft] if sample.softirq is not None else None
        np_ = [napi[c] for c in members if c in napi] if sample.napi is not None else None
        sn = [softnet[c] for c in members if c in softnet]

        def vec_rate(field: str, vec: int | None) -> float | None:
            if vec is None:
                return None
            if field == "runs":  # the kernel counts runs itself; raises only the hooks see
                return (
                    float(sum(runs[c][vec] for c in members if c in runs)) / dt_proc
                    if runs is not None
                    else None
                )
            if sq is None:
                return None
            return float(sum(getattr(s, field)[vec] for s in sq)) / dt

        def vec_pct(vec: int | None) -> float | None:
            if sq is None or vec is None:
                return None
            return 100.0 * sum(s.time_ns[vec] for s in sq) / (dt * 1e9 * n_cpu)

        polls = sum(n.polls for n in np_) if np_ is not None else 0
        softirq_ns: float | None = None
        if stat_ns is not None:
            softirq_ns = sum(stat_ns.get(c, 0) for c in members)
        elif sq is not None:
            softirq_ns = sum(sum(s.time_ns) for s in sq)
        return CpuRow(
            cpu=cpu,
            hardirqs_per_s=sum(h[0] for h in hard) / dt_proc if hard is not None else None,
            hardirq_time_pct=_time_pct([h[1] for h in hard], dt * n_cpu) if hard is not None else None,
            net_rx_raises_per_s=vec_rate("raises", rx),
            net_rx_runs_per_s=vec_rate("runs", rx),
            net_tx_raises_per_s=vec_rate("raises", tx),
            net_tx_runs_per_s=vec_rate("runs", tx),
            softirq_time_pct=(
                100.0 * softirq_ns / ((dt_stat if stat_ns is not None else dt) * 1e9 * n_cpu)
                if softirq_ns is not None
                else None
            ),
            net_rx_time_pct=vec_pct(rx),
            net_rx_wait_avg_ns=(
                _div(sum(s.wait_ns_sum[rx] for s in sq), sum(s.wait_count[rx] for s in sq))
                if sq is not None and rx is not None
                else None
            ),
            net_rx_wait_max_ns=(
                max(s.wait_ns_max[rx] for s in sq)
                if sq and rx is not None and any(s.wait_count[rx] for s in sq)
                else None
            ),
            napi_polls_per_s=polls / dt if np_ is not None else None,
            napi_packets_per_poll=_div(sum(n.packets for n in np_), polls) if np_ is not None else None,
            napi_budget_exhausted_pct=(
                _div(100.0 * sum(n.budget_exhausted for n in np_), polls) if np_ is not None else None
            ),
            time_squeeze_per_s=sum(s.time_squeeze for s in sn) / dt_softnet if sn else None,
            backlog_drops_per_s=sum(s.dropped for s in sn) / dt_softnet if sn else None,
            processed_per_s=sum(s.processed for s in sn) / dt_softnet if sn else None,
            softirq_rate=softirq_rate,
            napi_rate=napi_rate,
        )

    irq_rows = []
    lines = {line.irq: line for line in sample.irq_lines}
    for count in interrupts or ():
        line = lines.get(count.irq)
        irq_rows.append(
            IrqRow(
                irq=count.irq,
                name=line.name if line else "",
                device=line.device if line else "",
                queue=line.queue if line else "",
                per_s=sum(count.per_cpu) / dt_proc,
                per_cpu_per_s=tuple(c / dt_proc for c in count.per_cpu),
                time_pct=_time_pct([sum(count.time_ns) if count.time_ns is not None else None], dt),
            )
        )
    irq_rows.sort(key=lambda r: (-r.per_s, r.irq))
    return CpuView(
        interval_s=dt,
        cpus=cpus,
        rows=tuple(row(cpu, (cpu,)) for cpu in cpus),
        total=row(None, cpus),
        irqs=tuple(irq_rows),
        softirq_rate=softirq_rate,
        napi_rate=napi_rate,
    )
