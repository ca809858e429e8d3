"""Each findings rule over hand-made intervals (one symptom each), its threshold, and the tracker's
hysteresis. The kernel tests (tests/kernel/test_findings.py) cause the same symptoms for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from netscope.model.findings import FindingsTracker, Severity, cpumask_has, find, finding_json
from netscope.model.sample import (
    DeviceStats,
    DropEvent,
    DropReasonCount,
    DropsSample,
    FlowsSample,
    HostInfo,
    IrqCount,
    IrqLine,
    LatencySample,
    ProbeState,
    ProbeStatus,
    ProcLatency,
    Sample,
    SockLatency,
    SoftnetCpu,
)
from netscope.sources.nft import parse_drop_rules
from netscope.sources.recording import read_recording

INFO = HostInfo("box", "6.18", (0, 1), 0.0, netns=1)
TUNABLES = (
    ("net.core.netdev_max_backlog", "16"),
    ("net.core.netdev_budget", "300"),
    ("net.core.netdev_budget_usecs", "8000"),
    ("net.core.rmem_default", "212992"),
    ("net.core.rmem_max", "4194304"),
)


def interval(**fields: object) -> Sample:
    """One healthy second on two CPUs, with `fields` replaced."""
    base = Sample(
        ts=1000.0,
        interval_s=1.0,
        softirq_names=(),
        irq_lines=(),
        softnet=(SoftnetCpu(0, 5000, 0, 0), SoftnetCpu(1, 5000, 0, 0)),
        probes=(ProbeStatus("drops", ProbeState.LIVE),),
        tunables=TUNABLES,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def drops(reason: str, reason_id: int, count: int, dports: tuple[int, ...] = ()) -> DropsSample:
    events = tuple(
        DropEvent(
            0.0, 1, reason_id, reason, "", "sym+0x1", 0x0800, "vb", 7, 17, "10.0.0.1", "10.0.0.2", 4000, p
        )
        for p in dports
    )
    return DropsSample(
        reasons=(DropReasonCount(reason_id, reason, "", (0, count)),),
        buckets=(),
        events=events,
        logged=len(events),
        suppressed=count - len(events),
        lost=0,
        unbucketed=0,
        log_rate=1000,
    )


def test_a_healthy_interval_has_no_findings() -> None:
    assert find(INFO, interval()) == ()


def test_backlog_drops_name_the_cpu_and_netdev_max_backlog_with_its_value() -> None:
    sample = interval(
        softnet=(SoftnetCpu(0, 5000, 0, 0), SoftnetCpu(1, 9000, 3366, 0)),
        drops=drops("CPU_BACKLOG", 80, 3366),
    )
    (f,) = find(INFO, sample)
    assert f.id == "backlog_drops:cpu1" and f.severity == Severity.CRITICAL
    assert (f.knob, f.current) == ("net.core.netdev_max_backlog", "16")
    assert dict(f.evidence)["softnet_dropped"] == 3366
    assert dict(f.evidence)["drop_reason_CPU_BACKLOG"] == 3366
    assert "sysctl -w net.core.netdev_max_backlog=1000" in f.suggestion
    assert (f.pane, f.target) == ("cpus", "cpu:1")
    # With RPS the sending CPU frees the packet: the reason counts on CPU 0, softnet on CPU 1.
    reasons = (DropReasonCount(80, "CPU_BACKLOG", "", (3366, 0)),)
    rps = replace(sample, drops=replace(sample.drops, reasons=reasons))
    (f,) = find(INFO, rps)
    assert dict(f.evidence)["drop_reason_CPU_BACKLOG"] == 3366


def test_backlog_drops_show_the_rps_masks_that_steer_to_that_cpu() -> None:
    masks = (
        ("rps_cpus:eth0/rx-0", "00000000,00000001"),  # CPU 0 only: not this one's
        ("rps_cpus:vb@ns1/rx-0", "2"),
        ("rps_cpus:vc@ns2/rx-3", "00000001,00000003"),  # CPUs 0, 1 and 32
    )
    sample = interval(
        softnet=(SoftnetCpu(0, 5000, 0, 0), SoftnetCpu(1, 9000, 40, 0)), tunables=TUNABLES + masks
    )
    (f,) = find(INFO, sample)
    assert dict(f.evidence)["rps_cpus"] == "vb@ns1/rx-0=2, vc@ns2/rx-3=00000001,00000003"
    (f,) = find(INFO, replace(sample, tunables=TUNABLES + masks[:1]))
    assert "rps_cpus" not in dict(f.evidence)


def test_cpumask_words_are_read_highest_first() -> None:
    assert cpumask_has("00000001,00000000", 32) and not cpumask_has("00000001,00000000", 0)
    assert cpumask_has("f", 3) and not cpumask_has("f", 4) and not cpumask_has("", 0)


def test_time_squeeze_needs_ten_per_second() -> None:
    quiet = interval(softnet=(SoftnetCpu(0, 5000, 0, 9), SoftnetCpu(1, 5000, 0, 0)))
    assert find(INFO, quiet) == ()
    (f,) = find(INFO, interval(softnet=(SoftnetCpu(0, 5000, 0, 50), SoftnetCpu(1, 5000, 0, 0))))
    assert f.id == "time_squeeze:cpu0" and f.current == "300 / 8000"


def test_ring_overruns_show_ring_size_against_its_maximum() -> None:
    device = DeviceStats(1, 2, "eth0", "virtio_net", 256, 1024, 256, 1024, 9000, 10, 40, 0, 0, 0, 0, None, ())
    (f,) = find(INFO, interval(devices=(device,)))
    assert f.stage == "ring" and f.current == "256 of max 1024"
    assert f.suggestion.startswith("ethtool -G eth0 rx 1024")
    assert f.target == "device:1:2"


def test_rcvbuf_drops_name_the_reader_and_its_port() -> None:
    latency = LatencySample(
        processes=(ProcLatency(4242, "slowreader", 10, 320, 10, ((200, 10),), 90_000_000),),
        sockets=(SockLatency(4242, 17, "0.0.0.0", 6001, "0.0.0.0", 0, 10, 320, 10, (), 4608),),
        coarsened=0,
    )
    sample = interval(drops=drops("SOCKET_RCVBUFF", 6, 500, (6001,) * 20), latency=latency)
    (f,) = find(INFO, sample)
    assert "slowreader (pid 4242) reads port 6001 too slowly: its 4,608-byte receive buffer" in f.summary
    assert dict(f.evidence)["drops"] == 500
    assert dict(f.evidence)["copy_p99_us"] == 50.2  # the slow reader's copy latency, from its histogram
    assert dict(f.evidence)["so_rcvbuf"] == 4608
    assert f.current == "212992 / 4194304; its SO_RCVBUF 4608"
    assert (f.pane, f.target) == ("latency", "pid:4242")
    # A recording from before sk_rcvbuf was read: the sysctls alone.
    older = replace(latency, sockets=(replace(latency.sockets[0], rcvbuf=None),))
    (f,) = find(INFO, replace(sample, latency=older))
    assert f.current == "212992 / 4194304" and "so_rcvbuf" not in dict(f.evidence)
    assert "its receive buffer overflows" in f.summary


def test_no_socket_names_the_port_and_stays_quiet_below_five_per_second() -> None:
    assert find(INFO, interval(drops=drops("NO_SOCKET", 3, 4, (9,) * 4))) == ()
    sample = interval(drops=drops("NO_SOCKET", 3, 300, (9,) * 90 + (53,) * 10))
    found = {f.id: f for f in find(INFO, sample)}
    assert set(found) == {"no_socket:7:udp:9", "no_socket:7:udp:53"}
    assert dict(found["no_socket:7:udp:9"].evidence)["drops"] == 270  # its share of the log
    assert found["no_socket:7:udp:9"].target == "reason:3"


def test_netscope_says_when_its_own_events_were_lost_and_stops_when_they_stop() -> None:
    """Per interval, not on the probe's running total (which stays 12 once 12 were lost)."""
    status = (ProbeStatus("drops", ProbeState.LIVE, lost_events=12),)
    lossy = interval(probes=status, drops=replace(drops("NO_SOCKET", 3, 2), lost=12))
    (f,) = find(INFO, lossy)
    assert f.id == "netscope_lost:drops" and "--drop-log-rate" in f.suggestion
    assert dict(f.evidence)["lost"] == 12 and "the drop counts are exact" in f.summary
    assert find(INFO, interval(probes=status, drops=drops("NO_SOCKET", 3, 2))) == ()
    flows = FlowsSample(flows=(), filtered=0, filter="", events_lost=5)
    (f,) = find(INFO, interval(flows=flows))
    assert f.id == "netscope_lost:flows" and dict(f.evidence)["lost"] == 5


def test_tracker_clears_a_finding_only_after_its_evidence_is_gone_a_while() -> None:
    tracker = FindingsTracker(clear_after_s=10)
    storm = find(INFO, interval(drops=drops("NO_SOCKET", 3, 300, (9,) * 10)))
    (first,) = tracker.update(1000.0, storm)
    assert first.since == 1000.0 and first.quiet_s == 0
    for t in range(1001, 1010):  # gone for 9 s: still standing, marked quiet
        (a,) = tracker.update(float(t), ())
        assert a.quiet_s == t - 1000
    assert tracker.update(1010.0, ()) == ()
    (again,) = tracker.update(1011.0, storm)  # back: a new finding, since now
    assert again.since == 1011.0
    obj = finding_json(again)
    assert set(obj) >= {"id", "severity", "stage", "summary", "evidence", "knob", "current", "suggestion"}
    assert obj["evidence"]["port"] == 9


def test_worst_first() -> None:
    tracker = FindingsTracker()
    sample = interval(
        softnet=(SoftnetCpu(0, 5000, 0, 0), SoftnetCpu(1, 9000, 5000, 0)),
        drops=drops("NO_SOCKET", 3, 300, (9,) * 10),
        detail_every=20,
    )
    ranks = [a.finding.severity for a in tracker.update(1.0, find(INFO, sample))]
    assert ranks == [Severity.CRITICAL, Severity.WARNING, Severity.INFO]
    busy = interval(drops=drops("NO_SOCKET", 3, 300, (9,) * 10 + (53,) * 90))
    ports = [a.finding.id for a in FindingsTracker().update(1.0, find(INFO, busy))]
    assert ports == ["no_socket:7:udp:53", "no_socket:7:udp:9"]  # same severity: the faster first


NFT_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},'
    ' {"table": {"family": "inet", "name": "netscope_test", "handle": 1}},'
    ' {"rule": {"family": "inet", "table": "netscope_test", "chain": "input", "handle": 2, "expr":'
    ' [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 7777}},'
    ' {"counter": {"packets": 4930, "bytes": 157760}}, {"drop": null}]}},'
    ' {"rule": {"family": "inet", "table": "netscope_test", "chain": "input", "handle": 3, "expr":'
    ' [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},'
    ' {"accept": null}]}}]}'
)


def test_netfilter_drops_point_at_the_drop_rule_and_its_counter() -> None:
    rules = parse_drop_rules(NFT_JSON)  # the shape `nft -j list ruleset` prints (nft 1.0.6)
    assert rules == (("nft_drop:inet netscope_test input #2", "packets 4930"),)
    sample = interval(drops=drops("NETFILTER_DROP", 12, 4930, (7777,) * 10), tunables=TUNABLES + rules)
    (f,) = find(INFO, sample)
    assert f.current == "inet netscope_test input #2: packets 4930"
    assert dict(f.evidence)["top_dport"] == "udp/7777"
    assert (f.pane, f.target) == ("drops", "reason:12")
    assert f.suggestion.startswith("nft -a list ruleset")
    elsewhere = parse_drop_rules(NFT_JSON, "ns1")  # another namespace's ruleset, through nsenter
    assert elsewhere == (("nft_drop:inet netscope_test input #2 in netns ns1", "packets 4930"),)
    (f,) = find(INFO, replace(sample, tunables=TUNABLES + elsewhere))
    assert f.current == "inet netscope_test input #2 in netns ns1: packets 4930"
    assert f.suggestion.startswith("ip netns exec ns1 nft -a list ruleset")
    unnamed = parse_drop_rules(NFT_JSON, "pid 4242 nginx")  # a container's: entered by a process of it
    (f,) = find(INFO, replace(sample, tunables=TUNABLES + unnamed))
    assert f.suggestion.startswith("nsenter -t 4242 -n nft -a list ruleset")


def test_nic_interrupts_on_one_cpu_name_its_affinity() -> None:
    lines = (IrqLine(25, "virtio2-input.0", "eth0", "rx-0"), IrqLine(26, "virtio2-output.0", "eth0", "tx-0"))
    counts = (IrqCount(25, (4900, 20), (0, 0)), IrqCount(26, (300, 0), (0, 0)))  # the hooks' counts
    tunables = (*TUNABLES, ("irq/25/smp_affinity_list", "0"), ("irq/26/smp_affinity_list", "0"))
    (f,) = find(INFO, interval(irq_lines=lines, hardirq=counts, tunables=tunables))
    assert f.id == "irq_concentration:cpu0" and f.stage == "hardirq"
    assert dict(f.evidence)["share_pct"] == 99.6
    assert f.current == "25=0, 26=0"
    few = (IrqCount(25, (900, 0), (0, 0)),)  # under 1000/s: a quiet box, whatever the spread
    assert find(INFO, interval(irq_lines=lines, hardirq=few, tunables=tunables)) == ()


def test_the_recorded_fixture_gives_the_findings_of_its_drops() -> None:
    """tests/fixtures/veth-traffic.nsrec was recorded from a real kernel with a closed port, a
    slow reader and an nft drop rule: each shows as its finding, from the samples as recorded."""
    recording = read_recording(Path(__file__).parents[1] / "fixtures" / "veth-traffic.nsrec")
    tracker = FindingsTracker()
    for sample in recording.samples:
        tracker.update(sample.ts, find(recording.info, sample))
    rules = {a.finding.id.split(":")[0]: a.finding for a in tracker.active}
    assert {"no_socket", "rcvbuf_drops", "netfilter_drops"} <= set(rules), list(rules)
    assert dict(rules["no_socket"].evidence)["port"] == 9
    assert dict(rules["rcvbuf_drops"].evidence)["port"] == 5555
    assert rules["netfilter_drops"].target.startswith("reason:")


def knobs(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, values.get(k.rsplit(".", 1)[1], v)) for k, v in TUNABLES)


def test_a_suggestion_never_lowers_the_setting_in_force() -> None:
    """Each suggested value is derived from the one in force (raised, never lowered); once that is
    already high, the finding names the next knob instead. Measured: with rmem_max at 16 MiB, a
    slow reader's finding suggested rmem_max=8388608."""
    rcvbuf = interval(drops=drops("SOCKET_RCVBUFF", 6, 500, (6001,) * 20))
    for rmem_max, suggested in (("4194304", "8388608"), ("16777216", "33554432")):
        (f,) = find(INFO, replace(rcvbuf, tunables=knobs(rmem_max=rmem_max)))
        assert f"net.core.rmem_max={suggested}" in f.suggestion, f.suggestion
    (f,) = find(INFO, replace(rcvbuf, tunables=knobs(rmem_max=str(512 << 20))))
    assert "rmem_max=" not in f.suggestion and "SO_REUSEPORT" in f.suggestion, f.suggestion

    backlog = interval(softnet=(SoftnetCpu(0, 5000, 0, 0), SoftnetCpu(1, 9000, 3366, 0)))
    (f,) = find(INFO, replace(backlog, tunables=knobs(netdev_max_backlog="5000")))
    assert "net.core.netdev_max_backlog=20000" in f.suggestion, f.suggestion
    (f,) = find(INFO, replace(backlog, tunables=knobs(netdev_max_backlog="100000")))
    assert "netdev_max_backlog=" not in f.suggestion and "rps_cpus" in f.suggestion, f.suggestion

    squeeze = interval(softnet=(SoftnetCpu(0, 5000, 0, 50), SoftnetCpu(1, 5000, 0, 0)))
    (f,) = find(INFO, replace(squeeze, tunables=knobs(netdev_budget="1000", netdev_budget_usecs="8000")))
    assert "net.core.netdev_budget=2000 net.core.netdev_budget_usecs=16000" in f.suggestion, f.suggestion
    (f,) = find(INFO, replace(squeeze, tunables=knobs(netdev_budget="5000", netdev_budget_usecs="50000")))
    assert "sysctl" not in f.suggestion and "smp_affinity" in f.suggestion, f.suggestion
