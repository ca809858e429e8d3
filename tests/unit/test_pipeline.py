"""The home screen's pipeline: stage rates, losses, and the bottleneck."""

from __future__ import annotations

from netscope.model.pipeline import build_pipeline
from netscope.model.timeline import Timeline
from tests.unit.samples import two_cpu_sample
from tests.unit.test_drops_model import INFO, drops_sample


def test_stages_in_receive_path_order_and_the_bottleneck() -> None:
    timeline = Timeline(INFO)
    timeline.add(drops_sample())
    shown = timeline.shown()
    assert shown is not None
    stages = build_pipeline(shown)
    assert [s.name.split(" ")[0] for s in stages] == [
        "NIC",
        "hardirq",
        "NAPI",
        "stack",
        "socket",
        "user",
        "socket",
        "qdisc",
        "driver",
    ]
    napi = stages[2]
    assert napi.rate == 500.0  # 1000 packets over 2 s
    assert dict(napi.losses) == {"backlog drops": 2.0, "time_squeeze": 1.0}
    stack = stages[3]
    assert dict(stack.losses) == {"NO_SOCKET": 1500.0, "NETFILTER_DROP": 500.0}
    assert stack.bottleneck and [s.name for s in stages if s.bottleneck] == [stack.name]


def test_counters_count_without_probes_and_what_was_not_read_is_no_number() -> None:
    timeline = Timeline(INFO)
    timeline.add(two_cpu_sample(live=False))
    shown = timeline.shown()
    assert shown is not None
    stages = build_pipeline(shown)
    assert stages[1].rate is None  # neither /proc/interrupts nor the hooks read: no number, not 0
    assert stages[2].rate == 500.0  # softnet's processed: the kernel's own count needs no probe
    assert dict(stages[2].losses) == {"backlog drops": 2.0, "time_squeeze": 1.0}  # /proc/net/softnet_stat
    assert [s.name for s in stages if s.bottleneck] == [stages[2].name]


def test_each_loss_is_counted_once_at_its_stage() -> None:
    """CPU_BACKLOG is the NAPI/backlog stage's (softnet's dropped counts it there), not the stack's;
    a qdisc's drops are counted by the qdisc's own counter at TX, and TX reasons no counter holds
    (a neighbour that never resolved) are TX's, not the stack's."""
    from dataclasses import replace

    from netscope.model.sample import DropReasonCount

    sample = drops_sample()
    assert sample.drops is not None
    reasons = (
        *sample.drops.reasons,
        DropReasonCount(80, "CPU_BACKLOG", "", (0, 4)),
        DropReasonCount(60, "QDISC_DROP", "", (0, 600)),
        DropReasonCount(55, "NEIGH_FAILED", "", (0, 20)),
    )
    timeline = Timeline(INFO)
    timeline.add(replace(sample, drops=replace(sample.drops, reasons=reasons)))
    shown = timeline.shown()
    assert shown is not None
    stages = {f"{s.key} {s.name.split(' ')[0]}": s for s in build_pipeline(shown)}
    assert dict(stages["drops stack"].losses) == {"NO_SOCKET": 1500.0, "NETFILTER_DROP": 500.0}
    assert dict(stages["cpus NAPI"].losses) == {"backlog drops": 2.0, "time_squeeze": 1.0}
    assert dict(stages["tx socket"].losses) == {"NEIGH_FAILED": 10.0}  # before the qdisc
    assert stages["tx qdisc"].losses == () and stages["tx driver"].losses == ()
