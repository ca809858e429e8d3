from __future__ import annotations

from dataclasses import replace

import pytest

from netscope.model.cpu import build_cpu_view
from netscope.model.json_encoder import snapshot_json
from netscope.model.sample import HostInfo, ProcIrqCount, ProcSoftirqCpu
from tests.unit.samples import two_cpu_sample, view_of


def test_rates_percentages_and_per_poll_averages() -> None:
    view = build_cpu_view(two_cpu_sample(interval_s=2.0), (0, 1))
    cpu0, cpu1 = view.rows
    assert cpu0.hardirqs_per_s == 50
    assert cpu1.hardirqs_per_s == 150
    assert cpu0.hardirq_time_pct == pytest.approx(0.1)  # 2 ms over 2 s
    assert cpu0.net_rx_runs_per_s == 100
    assert cpu0.net_rx_raises_per_s == 110
    assert cpu0.net_rx_time_pct == pytest.approx(2.0)  # 40 ms over 2 s
    assert cpu0.softirq_time_pct == pytest.approx(2.05)
    assert cpu0.net_rx_wait_avg_ns == 10_000
    assert cpu0.net_rx_wait_max_ns == 90_000
    assert cpu0.napi_polls_per_s == 200
    assert cpu0.napi_packets_per_poll == 2.5
    assert cpu0.napi_budget_exhausted_pct == 1.0
    assert cpu0.time_squeeze_per_s == 1
    assert cpu0.backlog_drops_per_s == 2


def test_idle_cpu_has_no_averages_rather_than_zero() -> None:
    cpu1 = build_cpu_view(two_cpu_sample(), (0, 1)).rows[1]
    assert cpu1.napi_polls_per_s == 0
    assert cpu1.napi_packets_per_poll is None
    assert cpu1.net_rx_wait_avg_ns is None
    assert cpu1.net_rx_wait_max_ns is None


def test_total_row_sums_counts_and_averages_percentages() -> None:
    total = build_cpu_view(two_cpu_sample(interval_s=2.0), (0, 1)).total
    assert total.cpu is None
    assert total.hardirqs_per_s == 200
    assert total.net_rx_time_pct == pytest.approx(1.0)  # 40 ms over 2 CPUs x 2 s
    assert total.napi_packets_per_poll == 2.5


def test_probes_not_live_give_no_data() -> None:
    view = build_cpu_view(two_cpu_sample(live=False), (0, 1))
    row = view.rows[0]
    assert row.hardirqs_per_s is None and row.net_rx_runs_per_s is None and row.napi_polls_per_s is None
    assert row.time_squeeze_per_s == 1  # /proc still counts
    assert view.irqs == ()


def test_irq_rows_busiest_first_with_names() -> None:
    irqs = build_cpu_view(two_cpu_sample(interval_s=2.0), (0, 1)).irqs
    assert [(r.irq, r.device, r.queue, r.per_s) for r in irqs] == [
        (36, "vda", "req-0", 150),
        (38, "eth0", "rx-0", 50),
    ]
    assert irqs[0].per_cpu_per_s == (0, 150)
    assert irqs[1].time_pct == pytest.approx(0.1)


def test_kernel_counts_stand_in_when_the_hooks_did_not_run() -> None:
    """Interrupts and softirq runs from /proc; times, raises and waits only the hooks know."""
    sample = replace(
        two_cpu_sample(interval_s=2.0, live=False),
        proc_interrupts=(ProcIrqCount(38, (40, 0)), ProcIrqCount(36, (0, 160))),
        proc_softirqs=(ProcSoftirqCpu(0, (0, 8, 0, 200) + (0,) * 6), ProcSoftirqCpu(1, (0,) * 10)),
    )
    view = build_cpu_view(sample, (0, 1))
    cpu0, cpu1 = view.rows
    assert (cpu0.hardirqs_per_s, cpu1.hardirqs_per_s, view.total.hardirqs_per_s) == (20, 80, 100)
    assert cpu0.net_rx_runs_per_s == 100 and cpu1.net_rx_runs_per_s == 0
    assert cpu0.hardirq_time_pct is None and cpu0.net_rx_time_pct is None
    assert cpu0.net_rx_raises_per_s is None and cpu0.net_rx_wait_avg_ns is None
    assert [(r.irq, r.per_s, r.time_pct) for r in view.irqs] == [(36, 80, None), (38, 20, None)]
    obj = snapshot_json(view_of(HostInfo("box", "6.18", (0, 1), 0.0), sample))
    assert obj["cpus"][0]["softirqs"]["NET_RX"] == 200 and obj["cpus"][0]["softirq_time_ns"] is None
    assert obj["cpus"][1]["hardirqs"] == 160 and obj["irqs"][0]["time_ns"] is None
