"""Build raw samples for model tests (pure data; the UI tests use a real recording)."""

from __future__ import annotations

from netscope.model.sample import (
    HostInfo,
    IrqCount,
    IrqLine,
    NapiInstance,
    ProbeState,
    ProbeStatus,
    Sample,
    SnmpCount,
    SoftirqCpu,
    SoftnetCpu,
)
from netscope.model.timeline import Timeline, ViewModel

NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU")


def vec(**by_name: int) -> tuple[int, ...]:
    return tuple(by_name.get(n, 0) for n in NAMES)


def two_cpu_sample(interval_s: float = 2.0, live: bool = True) -> Sample:
    return Sample(
        ts=1_700_000_000.0,
        interval_s=interval_s,
        softirq_names=NAMES,
        irq_lines=(
            IrqLine(38, "virtio2-input.0", "eth0", "rx-0"),
            IrqLine(36, "virtio1-req.0", "vda", "req-0"),
        ),
        softnet=(SoftnetCpu(0, 1000, 4, 2), SoftnetCpu(1, 0, 0, 0)),
        snmp=(SnmpCount("Udp", "NoPorts", 7), SnmpCount("TcpExt", "ListenDrops", 0)),
        probes=tuple(
            ProbeStatus(n, ProbeState.LIVE if live else ProbeState.STARTING)
            for n in ("hardirq", "softirq", "napi")
        ),
        hardirq=(
            IrqCount(38, (100, 0), (2_000_000, 0)),
            IrqCount(36, (0, 300), (0, 1_000_000)),
        )
        if live
        else None,
        softirq=(
            SoftirqCpu(
                0,
                raises=vec(NET_RX=220, TIMER=10),
                runs=vec(NET_RX=200, TIMER=10),
                time_ns=vec(NET_RX=40_000_000, TIMER=1_000_000),
                wait_ns_sum=vec(NET_RX=2_000_000),
                wait_count=vec(NET_RX=200),
                wait_ns_max=vec(NET_RX=90_000),
            ),
            SoftirqCpu(1, vec(), vec(), vec(), vec(), vec(), vec()),
        )
        if live
        else None,
        napi=(
            NapiInstance(
                4026531840, 2, "eth0", 8193, (300, 0), (900, 0), (4, 0), (0, 0, 0, 0, 0, 0, 0, 4), (0,) * 4
            ),
            NapiInstance(0, 0, "", 0, (100, 0), (100, 0), (0, 0), (0, 100, 0, 0, 0, 0, 0, 0), (0,) * 4),
        )
        if live
        else None,
    )


def view_of(info: HostInfo, *samples: Sample) -> ViewModel:
    """The view model after `samples`, as every command builds it (the TUI, snapshot)."""
    timeline = Timeline(info)
    for sample in samples:
        timeline.add(sample)
    shown = timeline.shown()
    assert shown is not None
    return shown
