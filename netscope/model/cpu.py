"""The CPU view: per-CPU hardirq, softirq and NAPI rates from one raw sample. Pure.

A figure whose probe was not live for the whole interval is None (shown as "–"), never 0:
0 would claim the kernel did nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from netscope.model.sample import Sample

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


@dataclass(frozen=True)
class IrqRow:
    irq: int
    name: str
    device: str
    queue: str
    per_s: float
    per_cpu_per_s: tuple[float, ...]
    time_pct: float  # % of one CPU spent in this line's handler


@dataclass(frozen=True)
class CpuView:
    interval_s: float
    cpus: tuple[int, ...]
    rows: tuple[CpuRow, ...]
    total: CpuRow
    irqs: tuple[IrqRow, ...]  # busiest first


def _vec(names: tuple[str, ...], wanted: str) -> int | None:
    return names.index(wanted) if wanted in names else None


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
    dt = sample.interval_s
    rx = _vec(sample.softirq_names, NET_RX)
    tx = _vec(sample.softirq_names, NET_TX)
    hard_by_cpu: dict[int, tuple[int, int]] | None = None
    if sample.hardirq is not None:
        hard_by_cpu = {}
        for i, cpu in enumerate(cpus):
            hard_by_cpu[cpu] = (
                sum(line.per_cpu[i] for line in sample.hardirq),
                sum(line.time_ns[i] for line in sample.hardirq),
            )
    soft = {s.cpu: s for s in sample.softirq or ()}
    napi = napi_per_cpu(sample, cpus) or {}
    softnet = {s.cpu: s for s in sample.softnet}

    def row(cpu: int | None, members: tuple[int, ...]) -> CpuRow:
        n_cpu = len(members)
        hard = [hard_by_cpu[c] for c in members] if hard_by_cpu is not None else None
        sq = [soft[c] for c in members if c in soft] if sample.softirq is not None else None
        np_ = [napi[c] for c in members if c in napi] if sample.napi is not None else None
        sn = [softnet[c] for c in members if c in softnet]

        def vec_rate(field: str, vec: int | None) -> float | None:
            if sq is None or vec is None:
                return None
            return float(sum(getattr(s, field)[vec] for s in sq)) / dt

        def vec_pct(vec: int | None) -> float | None:
            if sq is None or vec is None:
                return None
            return 100.0 * sum(s.time_ns[vec] for s in sq) / (dt * 1e9 * n_cpu)

        polls = sum(n.polls for n in np_) if np_ is not None else 0
        return CpuRow(
            cpu=cpu,
            hardirqs_per_s=sum(h[0] for h in hard) / dt if hard is not None else None,
            hardirq_time_pct=100.0 * sum(h[1] for h in hard) / (dt * 1e9 * n_cpu)
            if hard is not None
            else None,
            net_rx_raises_per_s=vec_rate("raises", rx),
            net_rx_runs_per_s=vec_rate("runs", rx),
            net_tx_raises_per_s=vec_rate("raises", tx),
            net_tx_runs_per_s=vec_rate("runs", tx),
            softirq_time_pct=(
                100.0 * sum(sum(s.time_ns) for s in sq) / (dt * 1e9 * n_cpu) if sq is not None else None
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
            time_squeeze_per_s=sum(s.time_squeeze for s in sn) / dt if sn else None,
            backlog_drops_per_s=sum(s.dropped for s in sn) / dt if sn else None,
        )

    irq_rows = []
    if sample.hardirq is not None:
        lines = {line.irq: line for line in sample.irq_lines}
        for count in sample.hardirq:
            line = lines.get(count.irq)
            irq_rows.append(
                IrqRow(
                    irq=count.irq,
                    name=line.name if line else "",
                    device=line.device if line else "",
                    queue=line.queue if line else "",
                    per_s=sum(count.per_cpu) / dt,
                    per_cpu_per_s=tuple(c / dt for c in count.per_cpu),
                    time_pct=100.0 * sum(count.time_ns) / (dt * 1e9),
                )
            )
        irq_rows.sort(key=lambda r: (-r.per_s, r.irq))
    return CpuView(
        interval_s=dt,
        cpus=cpus,
        rows=tuple(row(cpu, (cpu,)) for cpu in cpus),
        total=row(None, cpus),
        irqs=tuple(irq_rows),
    )
