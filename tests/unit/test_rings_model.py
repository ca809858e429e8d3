"""The Rings view: per-device and per-queue rates, the NAPI pressure estimate, filters."""

from __future__ import annotations

import dataclasses

from netscope.model.rings import build_rings_view, known_interfaces, pressure
from netscope.model.sample import DeviceStats, HostInfo, NapiInstance, ProbeState, ProbeStatus, QueueCount
from tests.unit.samples import two_cpu_sample

OWN = 4026531840
POD = 4026532246
INFO = HostInfo("box", "6.18", (0, 1), 0.0, netns=OWN)


def napi(
    ifindex: int, netns: int, polls: tuple[int, int], full: tuple[int, int], streaks: tuple[int, ...]
) -> NapiInstance:
    return NapiInstance(
        netns,
        ifindex,
        "eth0",
        8193,
        polls,
        (polls[0] * 10, polls[1] * 10),
        full,
        (0, 0, 0, 10, 20, 0, 0, 30),
        streaks,
    )


def device(netns: int, ifindex: int, name: str, **counters: int) -> DeviceStats:
    base = dict(rx_packets=0, tx_packets=0, rx_missed=0, rx_over=0, rx_fifo=0, rx_dropped=0, tx_dropped=0)
    base.update(counters)
    return DeviceStats(
        netns,
        ifindex,
        name,
        "virtio_net",
        256,
        4096,
        None,
        None,
        qdisc_drops=3,
        bql=((0, 1500, 30000),),
        **base,
    )


def sample():  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        two_cpu_sample(interval_s=2.0),
        napi=(
            napi(2, OWN, (30, 30), (6, 0), (2, 1, 0, 1)),
            NapiInstance(0, 0, "", 0, (100, 0), (100, 0), (0, 0), (0, 100, 0, 0, 0, 0, 0, 0), (0,) * 4),
        ),
        queues=(
            QueueCount(OWN, 2, "eth0", 0, False, 1000, 1_500_000),
            QueueCount(OWN, 2, "eth0", 1, False, 600, 900_000),
            QueueCount(OWN, 2, "eth0", 0, True, 200, 20_000),
            QueueCount(POD, 5, "eth0", -1, False, 40, 4000),
        ),
        devices=(device(OWN, 2, "eth0", rx_packets=1600, rx_missed=7, rx_dropped=1), device(OWN, 1, "lo")),
        netns_names=((POD, "pod-a"),),
    )


def test_pressure_share_depth_and_streaks() -> None:
    p = pressure([napi(2, OWN, (30, 30), (6, 0), (2, 1, 0, 1))])
    assert p.polls == 60 and p.budget_exhausted == 6
    assert p.full_pct == 10.0
    assert p.packets_per_poll == 10.0
    assert p.work_hist == (0, 0, 0, 10, 20, 0, 0, 30)
    assert p.longest_streak == "8+"
    idle = pressure([])
    assert idle.full_pct is None and idle.packets_per_poll is None and idle.longest_streak == ""


def test_devices_queues_and_namespaces() -> None:
    view = build_rings_view(sample(), INFO)
    eth0, pod, lo = view.devices
    assert (eth0.label, pod.label, lo.label) == ("eth0", "eth0@pod-a", "lo")  # names repeat across namespaces
    assert eth0.rx_pps == 800 and eth0.rx_bps == 1_200_000 and eth0.tx_pps == 100
    assert [(q.label, q.rx_pps, q.tx_pps, q.bql_inflight, q.bql_limit) for q in eth0.queues] == [
        ("0", 500, 100, 1500, 30000),
        ("1", 300, 0, None, None),
    ]
    assert eth0.lost_per_interval == 8
    assert eth0.pressure.full_pct == 10.0
    assert pod.stats is None and pod.queues[0].label == "?"
    assert view.backlog is not None and view.backlog.pressure.polls == 100
    assert lo.stats is not None and lo.stats.rx_ring == 256


def test_filters_by_interface_and_namespace() -> None:
    assert [d.label for d in build_rings_view(sample(), INFO, interfaces=("lo",)).devices] == ["lo"]
    assert [d.label for d in build_rings_view(sample(), INFO, netns="pod-a").devices] == ["eth0@pod-a"]
    assert [d.label for d in build_rings_view(sample(), INFO, netns=str(POD)).devices] == ["eth0@pod-a"]
    assert known_interfaces(sample(), INFO) == {"eth0": {"", "pod-a"}, "lo": {""}}


def test_no_counters_and_no_rings_probe_means_no_rates() -> None:
    view = build_rings_view(dataclasses.replace(sample(), queues=None, devices=()), INFO)
    assert view.live is False


def test_counters_first_the_hooks_only_where_no_counter_splits_the_queues() -> None:
    qstats = (("rx", 0, "rx-packets", 900), ("rx", 0, "rx-bytes", 90_000), ("tx", 0, "tx-packets", 50))
    counted = (
        # the device's own counters win over the hooks' sample; its qstats give its queues
        dataclasses.replace(
            device(OWN, 2, "eth0", rx_packets=1600, tx_packets=50),
            rx_bytes=2_400_000,
            tx_bytes=5000,
            rx_queues=2,
            tx_queues=2,
            qstats=qstats,
        ),
        # one queue each way: the queue is the device
        dataclasses.replace(
            device(POD, 5, "eth0", rx_packets=44), rx_bytes=4400, tx_bytes=0, rx_queues=1, tx_queues=1
        ),
        # two queues and no per-queue counter: the hooks' sample splits the device's own counts
        dataclasses.replace(device(OWN, 7, "mq0", rx_packets=20), rx_bytes=2000, tx_bytes=0, rx_queues=2),
    )
    mq_hooked = (QueueCount(OWN, 7, "mq0", 0, False, 4, 400), QueueCount(OWN, 7, "mq0", 1, False, 12, 1200))
    queues = (*sample().queues, *mq_hooked)
    sampled = (ProbeStatus("rings", ProbeState.LIVE, sample_rate=8),)  # 1 skb in 8 counted
    view = build_rings_view(
        dataclasses.replace(sample(), devices=counted, queues=queues, probes=sampled), INFO
    )
    by_label = {d.label: d for d in view.devices}
    eth0, pod, mq = by_label["eth0"], by_label["eth0@pod-a"], by_label["mq0"]
    assert (eth0.rx_pps, eth0.rx_bps, eth0.tx_pps) == (800, 1_200_000, 25)  # stats64, not 1600/2 hooked
    assert [(q.label, q.rx_pps, q.rx_bps, q.tx_pps, q.estimated) for q in eth0.queues] == [
        ("0", 450, 45_000, 25, False)
    ]
    assert [(q.label, q.rx_pps, q.estimated) for q in pod.queues] == [("0", 22, False)]
    assert mq.rx_pps == 10  # the device's own count
    # The sample (16 packets, 1 in 4 on queue 0) shares the device's 20 out: 5 and 15, not 4 and 12.
    assert [(q.label, q.rx_pps, q.rx_bps, q.estimated) for q in mq.queues] == [
        ("0", 2.5, 250, True),
        ("1", 7.5, 750, True),
    ]
    assert view.live
