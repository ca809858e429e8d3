"""The stage balance's arithmetic (model/balance.py): which counter sits on which side of a stage,
which one wins where two overlap, and when what is left over is a silent loss."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from netscope.model.balance import StageBalance, build_balance, netns_balance, noise, sum_balances
from netscope.model.findings import Finding
from netscope.model.sample import (
    DeviceStats,
    DropBucket,
    DropReasonCount,
    DropsSample,
    HostInfo,
    LatencySample,
    NetnsSnmp,
    ProbeState,
    ProbeStatus,
    ProcLatency,
    Sample,
    SnmpCount,
    SoftnetCpu,
)
from netscope.model.timeline import Timeline
from netscope.prometheus import NetscopeCollector
from netscope.sources.recording import read_recording

NETNS = 4026532999
INFO = HostInfo("box", "6.18.44", (0, 1), 0.0, netns=4026531840)


def device(
    rx: int, kind: str = "", master: int = 0, rx_dropped: int = 0, rx_missed: int = 0, gro: bool | None = None
) -> DeviceStats:
    return DeviceStats(
        NETNS, 2, "eth0", "", None, None, None, None, rx, 0, rx_missed, 0, 0, rx_dropped, 0, None, (),
        master=master, kind=kind, gro=gro,
    )  # fmt: skip


def counts(**by_name: int) -> dict[tuple[str, str], int]:
    """Ip_InReceives=5 -> {("Ip", "InReceives"): 5}."""
    return {tuple(k.split("_", 1)): v for k, v in by_name.items()}  # type: ignore[misc]


def test_udp_to_a_closed_port_closes_every_stage_with_noports_at_transport() -> None:
    dev, ip, transport = netns_balance(
        NETNS,
        [device(1000)],
        counts(Ip_InReceives=1000, Ip_InDelivers=1000, Udp_NoPorts=1000),
        0,
        1.0,
    )
    assert (dev.in_, dev.out, dev.unaccounted, dev.lost) == (1000, 1000, 0, ())
    assert (ip.in_, ip.out, ip.unaccounted) == (1000, 1000, 0)
    assert (transport.in_, transport.out, transport.lost, transport.unaccounted) == (
        1000,
        0,
        (("Udp NoPorts", 1000),),
        0,
    )


def test_udp_inerrors_counts_rcvbuf_and_mem_errors_too_so_they_are_named_once() -> None:
    _, _, transport = netns_balance(
        NETNS,
        [device(100)],
        counts(
            Ip_InReceives=100,
            Ip_InDelivers=100,
            Udp_InDatagrams=60,
            Udp_RcvbufErrors=30,
            Udp_MemErrors=4,
            Udp_InErrors=40,
        ),
        0,
        1.0,
    )
    assert dict(transport.lost) == {"Udp RcvbufErrors": 30, "Udp MemErrors": 4, "Udp InErrors": 6}
    assert transport.unaccounted == 0


def test_veth_counts_rx_packets_only_for_what_the_backlog_took_so_its_core_drops_are_added_in() -> None:
    snmp = counts(Ip_InReceives=900, Ip_InDelivers=900, Udp_InDatagrams=900)
    dev, *_ = netns_balance(NETNS, [device(900, kind="veth", rx_dropped=100)], snmp, 0, 1.0)
    assert (dev.in_, dev.lost, dev.unaccounted) == (1000, (("rx_dropped", 100),), 0)
    # A NIC counts rx_packets first: its core drops are already in.
    dev, *_ = netns_balance(NETNS, [device(1000, rx_dropped=100)], snmp, 0, 1.0)
    assert (dev.in_, dev.unaccounted) == (1000, 0)


def test_a_bridge_port_is_left_out_its_packets_show_again_on_the_bridge() -> None:
    snmp = counts(Ip_InReceives=300, Ip_InDelivers=300, Tcp_InSegs=300)
    devices = [device(1000, kind="veth", master=5), replace(device(300, kind="bridge"), ifindex=5)]
    dev, *_ = netns_balance(NETNS, devices, snmp, 0, 1.0)
    assert (dev.in_, dev.unaccounted) == (300, 0)


def test_netfilter_drops_go_to_the_stage_whose_counters_leave_them_unexplained() -> None:
    # 400 dropped at netdev ingress (never reached IP), 100 at input (reached IP, never delivered).
    snmp = counts(Ip_InReceives=600, Ip_InDelivers=500, Udp_InDatagrams=500)
    dev, ip, *_ = netns_balance(NETNS, [device(1000, kind="veth")], snmp, 500, 1.0)
    assert dict(dev.lost) == {"NETFILTER_DROP": 400} and dev.unaccounted == 0
    assert dict(ip.lost) == {"NETFILTER_DROP": 100} and ip.unaccounted == 0
    # Where GRO merged, the device's gap may be merged packets: every netfilter drop is IP's.
    dev, ip, *_ = netns_balance(NETNS, [device(1000, gro=True)], snmp, 500, 1.0)
    assert dev.lost == () and not dev.checked
    assert dict(ip.lost) == {"NETFILTER_DROP": 500}


def test_noise_is_what_ip_counted_while_the_devices_were_read_plus_the_drop_reasons_skew() -> None:
    assert noise(0, 1.0) == 8
    assert noise(100_000, 1.0) == 508  # 5 ms of 100k/s
    assert noise(100_000, 2.0) == 258
    assert noise(100_000, 1.0, read_skew=3000) == 3508  # a reader preempted at a flood's edge


def balanced_sample(ip_in_receives: int, drops: DropsSample | None) -> Sample:
    """One second in namespace NETNS: 10,000 packets in on its device, `ip_in_receives` reaching IP."""
    return Sample(
        ts=1000.0,
        interval_s=1.0,
        softirq_names=(),
        irq_lines=(),
        softnet=(SoftnetCpu(0, 10_000, 0, 0),),
        probes=(),
        devices=(device(10_000, kind="veth"),),
        netns_snmp=(
            NetnsSnmp(
                NETNS,
                (
                    SnmpCount("Ip", "InReceives", ip_in_receives),
                    SnmpCount("Ip", "InDelivers", ip_in_receives),
                    SnmpCount("Udp", "InDatagrams", ip_in_receives),
                ),
            ),
        ),
        netns_names=((NETNS, "blue"),),
        drops=drops,
    )


NO_DROPS = DropsSample((), (), (), 0, 0, 0, 0, 1000)


def silent_findings(*samples: Sample) -> list[Finding]:
    """The silent-loss findings standing after the timeline took `samples` in turn."""
    timeline = Timeline(INFO)
    for i, sample in enumerate(samples):
        timeline.add(replace(sample, ts=1000.0 + i))
    shown = timeline.shown()
    assert shown is not None
    return [a.finding for a in shown.findings if a.finding.id.startswith("silent_loss")]


def test_packets_no_counter_names_raise_silent_loss_with_the_counters_on_either_side() -> None:
    sample = balanced_sample(9000, NO_DROPS)  # 1,000 left the device and never reached IP
    device_row = next(r for r in build_balance(sample) if r.stage == "device")
    assert (device_row.unaccounted, device_row.noise, device_row.beyond_noise) == (1000, 58, 1000)
    assert silent_findings(sample) == []  # one interval: the next may give them back
    (f,) = silent_findings(sample, balanced_sample(10_000, NO_DROPS))
    assert f.id == f"silent_loss:{NETNS}:device"
    assert "1,000 packets vanished in the device stage (blue)" in f.summary
    evidence = dict(f.evidence)
    assert (
        evidence["in_counter"].startswith("stats64 rx_packets")
        and evidence["out_counter"] == "Ip/Ip6 InReceives"
    )
    assert (evidence["in"], evidence["out"], evidence["unaccounted"]) == (10_000, 9000, 1000)


def test_a_count_read_late_on_one_side_and_given_back_next_interval_is_no_silent_loss() -> None:
    late = replace(balanced_sample(9000, NO_DROPS), devices=(device(10_000, kind="veth"),))
    caught_up = balanced_sample(11_000, NO_DROPS)  # IP counts the 1,000 now: 10,000 in, 11,000 out
    assert silent_findings(late, caught_up) == []
    assert silent_findings(late, balanced_sample(10_000, NO_DROPS)) != []


def test_within_the_noise_or_named_by_a_drop_reason_is_no_silent_loss() -> None:
    within = balanced_sample(9960, NO_DROPS)
    assert silent_findings(within, within) == []
    netfilter = DropsSample(
        (DropReasonCount(6, "NETFILTER_DROP", "", (1000,)),),
        (DropBucket(6, 0, "nf_hook_slow+0x1", 0x0800, 2, "eth0", NETNS, (1000,)),),
        (),
        0,
        0,
        0,
        0,
        1000,
    )
    sample = balanced_sample(9000, netfilter)
    device_row = next(r for r in build_balance(sample) if r.stage == "device")
    assert dict(device_row.lost) == {"NETFILTER_DROP": 1000} and device_row.unaccounted == 0
    assert silent_findings(sample, sample) == []


def test_a_nic_s_wire_packets_merged_by_gro_are_shown_but_never_called_a_silent_loss() -> None:
    sample = replace(balanced_sample(9000, NO_DROPS), devices=(device(10_000),))
    device_row = next(r for r in build_balance(sample) if r.stage == "device")
    assert device_row.unaccounted == 1000 and not device_row.checked and device_row.beyond_noise == 0
    assert silent_findings(sample, sample) == []


def test_gro_decides_whether_the_device_stage_is_checked() -> None:
    """A NIC with GRO off is checked; a veth with GRO on (its own NAPI) is not; loopback says GRO
    is on and never merges (no NAPI instance)."""
    snmp = counts(Ip_InReceives=900)
    for dev, checked in (
        (device(1000, gro=False), True),
        (device(1000, gro=True), False),
        (device(1000), False),  # a NIC that does not say
        (device(1000, kind="veth", gro=True), False),
        (device(1000, kind="veth", gro=False), True),
        (device(1000, kind="loopback", gro=True), True),
    ):
        row, *_ = netns_balance(NETNS, [dev], snmp, 0, 1.0)
        assert row.checked is checked, dev


def test_unwatched_drop_reasons_leave_the_device_and_ip_stages_unchecked() -> None:
    """Without the drop reasons a netfilter drop would look like a silent loss: no finding."""
    sample = balanced_sample(9000, None)
    assert not [r for r in build_balance(sample) if r.checked and r.stage != "backlog"]
    assert silent_findings(sample, sample) == []


def test_balances_sum_per_stage_over_intervals() -> None:
    rows = build_balance(balanced_sample(9000, NO_DROPS)) + build_balance(balanced_sample(10_000, NO_DROPS))
    summed = {r.stage: r for r in sum_balances(r for r in rows if r.netns == NETNS)}
    assert (summed["device"].in_, summed["device"].out, summed["device"].unaccounted) == (
        20_000,
        19_000,
        1000,
    )
    assert summed["device"].noise == 116


def test_the_export_counts_each_stage_in_out_lost_and_silent_loss_by_namespace_name() -> None:
    collector = NetscopeCollector(INFO)
    for ip_in in (9000, 10_000):  # 1,000 vanished in the first, and stayed so in the second
        collector.add(balanced_sample(ip_in, NO_DROPS))
    samples = {
        (m.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector.collect()
        if m.name.startswith("netscope_stage")
        for s in m.samples
        if s.name.endswith("_total")
    }
    blue = (("netns", "blue"), ("stage", "device"))
    assert samples[("netscope_stage_in_packets", blue)] == 20_000
    assert samples[("netscope_stage_out_packets", blue)] == 19_000
    assert samples[("netscope_stage_silent_loss_packets", blue)] == 1000
    host_lost = (("cause", "softnet dropped"), ("netns", ""), ("stage", "backlog"))
    assert ("netscope_stage_lost_packets", host_lost) not in samples  # softnet dropped nothing
    assert samples[("netscope_stage_in_packets", (("netns", ""), ("stage", "backlog")))] == 20_000


def test_a_gap_of_a_few_non_ip_frames_at_the_device_takes_no_netfilter_drop() -> None:
    """An ARP request came in with 500 datagrams an nft input rule dropped: all 500 are IP's."""
    dev, ip, *_ = netns_balance(NETNS, [device(501, kind="veth")], counts(Ip_InReceives=500), 500, 1.0)
    assert dev.lost == () and dev.unaccounted == 1
    assert dict(ip.lost) == {"NETFILTER_DROP": 500} and ip.unaccounted == 0


def test_a_recorded_counter_that_does_not_reconcile_raises_silent_loss() -> None:
    """The UI fixture (a real kernel's samples) with the receiver's Ip InDelivers read 4,000 short
    in two intervals in a row: the IP stage loses them with no counter naming them. (The recording's
    own IP stage moves by about a thousand each way from one interval to the next, within its
    noise: a batch counted on one side before the read and on the other after it.)"""
    recording = read_recording(Path(__file__).parent.parent / "fixtures" / "veth-traffic.nsrec")
    samples = list(recording.samples)

    def received(ns: NetnsSnmp) -> int:
        return next(c.count for c in ns.counts if (c.group, c.name) == ("Ip", "InReceives"))

    receiver = max(samples[3].netns_snmp, key=received).netns

    def ip(sample: Sample) -> StageBalance:
        return next(r for r in build_balance(sample) if r.stage == "ip" and r.netns == receiver)

    def closes(sample: Sample) -> bool:
        return abs(ip(sample).unaccounted) <= ip(sample).noise

    # Two intervals in a row that close in the recording, within their noise, after one not past
    # its noise (one that was would be confirmed by the first short one: a batch of the nft rule's
    # drops counted by the drop reasons on one side of a read and by snmp on the other).
    k = next(
        i
        for i in range(len(samples) - 2)
        if (i == 0 or ip(samples[i - 1]).unaccounted <= ip(samples[i - 1]).noise)
        and closes(samples[i])
        and closes(samples[i + 1])
    )

    def short(sample: Sample) -> Sample:
        def fix(ns: NetnsSnmp) -> NetnsSnmp:
            if ns.netns != receiver:
                return ns
            counts = tuple(
                replace(c, count=c.count - 4000) if (c.group, c.name) == ("Ip", "InDelivers") else c
                for c in ns.counts
            )
            return replace(ns, counts=counts)

        return replace(sample, netns_snmp=tuple(fix(ns) for ns in sample.netns_snmp))

    timeline = Timeline(recording.info)
    found: list[Finding] = []
    for i, sample in enumerate(samples[: k + 2]):
        timeline.add(short(sample) if i in (k, k + 1) else sample)
        shown = timeline.shown()
        assert shown is not None
        found = [a.finding for a in shown.findings if a.finding.id.startswith("silent_loss")]
        if i <= k:  # the untouched recording closes; the first short interval is not confirmed yet
            assert found == [], (i, found)
    (f,) = found
    assert f.id == f"silent_loss:{receiver}:ip"
    assert dict(f.evidence)["unaccounted"] >= 4000 - 1100  # less what the interval moved within noise


def sender(tx: int, qdisc_drops: int = 0, tx_dropped: int = 0, master: int = 0) -> DeviceStats:
    return replace(device(0, master=master), tx_packets=tx, qdisc_drops=qdisc_drops, tx_dropped=tx_dropped)


def test_tx_takes_what_ip_handed_to_the_devices_against_what_they_sent_lost_at_qdisc_device_neighbour() -> (
    None
):
    sent = counts(Ip_OutTransmits=1000, Ip6_OutTransmits=150)
    devices = [sender(1000, qdisc_drops=100), sender(20, tx_dropped=10), sender(999, master=3)]
    tx = netns_balance(NETNS, devices, sent, 0, 1.0, neigh_drops={"NEIGH_FAILED": 20})[3]
    assert (tx.stage, tx.in_, tx.out) == ("tx", 1150, 1020)  # the bridge port is left out
    assert dict(tx.lost) == {"qdisc drops": 100, "tx_dropped": 10, "NEIGH_FAILED": 20}
    assert tx.unaccounted == 0 and tx.checked
    lost_unnamed = netns_balance(NETNS, [sender(900)], sent, 0, 1.0, neigh_drops={})[3]
    assert (lost_unnamed.unaccounted, lost_unnamed.beyond_noise) == (250, 250)  # past its noise (14)
    # ARP goes out without IP counting it: more out than in is no loss.
    arp = netns_balance(NETNS, [sender(1005)], counts(Ip_OutTransmits=1000), 0, 1.0, neigh_drops={})[3]
    assert arp.unaccounted == -5 and arp.beyond_noise == 0
    # Without drop reasons (a neighbour drop would look silent): shown, not checked. A kernel without
    # OutTransmits (before 6.3), or a recording made before netscope read it: no way out.
    assert not netns_balance(NETNS, devices, sent, None, 1.0, neigh_drops=None)[3].checked
    assert len(netns_balance(NETNS, devices, counts(Ip_InReceives=1), 0, 1.0, neigh_drops={})) == 3


def test_the_socket_stage_is_the_hooks_queued_and_read_with_the_socket_drops_never_checked() -> None:
    socket_drops = DropsSample(
        (DropReasonCount(7, "SOCKET_RCVBUFF", "", (300,)), DropReasonCount(2, "NO_SOCKET", "", (50,))),
        (
            DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", NETNS, (300,)),
            DropBucket(2, 0, "__udp4_lib_rcv+0x1", 0x0800, 2, "eth0", NETNS, (50,)),
        ),
        (),
        0,
        0,
        0,
        0,
        1000,
    )
    reader = ProcLatency(42, "reader", 9000, 9000 * 64, 0, (), 0)
    sample = replace(
        balanced_sample(10_000, socket_drops),
        latency=LatencySample((reader,), (), 0, arrivals=9600),
        probes=(ProbeStatus("latency", ProbeState.LIVE, sample_rate=16),),
    )
    (row,) = [r for r in build_balance(sample) if r.stage == "socket"]
    assert (row.netns, row.in_, row.out, dict(row.lost)) == (0, 9900, 9000, {"SOCKET_RCVBUFF": 300})
    assert row.unaccounted == 600  # queued, not yet read: a queue, never a silent loss
    assert (row.checked, row.estimated, row.beyond_noise) == (False, True, 0)
    unsampled = replace(sample, probes=(ProbeStatus("latency", ProbeState.LIVE),))
    assert not next(r for r in build_balance(unsampled) if r.stage == "socket").estimated
    assert not any(r.stage == "socket" for r in build_balance(replace(sample, latency=None)))


def test_a_count_read_late_at_the_boundary_before_is_not_a_silent_loss() -> None:
    """CI once: the device stage read -3,176 (noise 3,105), then +3,176 (noise 1,227), then 1: the
    same packets on either side of one skewed read, given back before, not after."""
    from netscope.model.balance import StageBalance, confirm_silent

    def row(in_: int, out: int, noise_: int) -> StageBalance:
        return StageBalance(1, "device", in_, out, (), noise_, True)

    early, late, after = row(180_000, 183_176, 3105), row(243_184, 240_008, 1227), row(1, 0, 9)
    assert late.beyond_noise == 3176
    assert confirm_silent((late,), (after,), (early,)) == ()
    assert confirm_silent((late,), (after,)) == (late,)  # with nothing before, it stands
