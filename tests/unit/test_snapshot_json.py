from __future__ import annotations

from netscope.model.findings import FindingsTracker, find
from netscope.model.json_encoder import snapshot_json
from netscope.model.sample import HostInfo
from tests.unit.samples import two_cpu_sample, view_of

INFO = HostInfo("box", "6.18.44", (0, 1), 0.0)


def test_schema_and_per_interval_counts() -> None:
    obj = snapshot_json(view_of(INFO, two_cpu_sample(interval_s=2.0)))
    assert set(obj) == {
        "ts",
        "interval_s",
        "detail",
        "read_failed",
        "spans",
        "host",
        "kernel",
        "cpus",
        "irqs",
        "probes",
        "drops",
        "drop_log",
        "snmp",
        "balance",
        "queues",
        "devices",
        "tx",
        "copy_latency",
        "processes",
        "flows",
        "flows_other",
        "flows_sample_rate",
        "flows_not_held",
        "flows_unseen",
        "cost",
        "findings",
    }
    assert [f["id"] for f in obj["findings"]] == ["backlog_drops:cpu0"]  # the timeline's standing ones
    assert obj["detail"] == {"every": 1, "measured": True}
    assert obj["snmp"] == {"Udp.NoPorts": 7, "TcpExt.ListenDrops": 0}
    (backlog,) = obj["balance"]  # the host's; no namespace's snmp counters in this sample
    assert (backlog["stage"], backlog["in"], backlog["out"]) == ("backlog", 1004, 1000)
    assert backlog["lost"] == {"softnet dropped": 4} and backlog["unaccounted"] == 0
    cpu0 = obj["cpus"][0]
    assert cpu0["cpu"] == 0
    assert cpu0["hardirqs"] == 100
    assert cpu0["softirqs"]["NET_RX"] == 200  # counts, not rates
    assert cpu0["softirq_time_ns"]["NET_RX"] == 40_000_000
    assert cpu0["net_rx_wait_ns_max"] == 90_000
    assert (cpu0["napi_polls"], cpu0["napi_packets"]) == (400, 1000)
    assert (cpu0["time_squeeze"], cpu0["backlog_drops"], cpu0["processed"]) == (2, 4, 1000)
    assert cpu0["softirq_time_total_ns"] is None  # /proc/stat not read for this sample
    assert obj["irqs"][0] == {
        "irq": 38,
        "name": "virtio2-input.0",
        "device": "eth0",
        "queue": "rx-0",
        "count": 100,
        "per_cpu": [100, 0],
        "time_ns": 2_000_000,
    }
    assert obj["probes"][0] == {
        "name": "hardirq",
        "state": "live",
        "error": "",
        "lost_events": 0,
        "recursion_misses": 0,
        "not_counted": 0,
        "evicted": 0,
        "sample_rate": 1,
        "window_every": 1,
    }


def test_probe_not_live_is_null_not_zero() -> None:
    obj = snapshot_json(view_of(INFO, two_cpu_sample(live=False)))
    assert obj["cpus"][0]["hardirqs"] is None
    assert obj["cpus"][0]["softirqs"] is None
    assert obj["cpus"][0]["time_squeeze"] == 2
    assert obj["irqs"] == []


def test_drops_section() -> None:
    from tests.unit.test_drops_model import INFO as DROPS_INFO
    from tests.unit.test_drops_model import drops_sample

    obj = snapshot_json(view_of(DROPS_INFO, drops_sample()))
    first = obj["drops"][0]
    assert first["reason"] == "NO_SOCKET" and first["reason_id"] == 3 and first["subsystem"] == ""
    assert first["count"] == 3000  # per interval, not per second
    assert first["locations"] == [{"symbol": "__udp4_lib_rcv+0x4bc", "count": 3000}]
    assert first["devices"] == {"veth1@nsB": 2000, "eth0": 1000}
    assert first["protocols"] == {"IPv4": 3000}
    assert first["cpus"] == {"1": 3000}
    assert obj["drop_log"] == {
        "logged": 1000,
        "suppressed": 3000,
        "lost": 2,
        "unbucketed": 0,
        "rate_limit": 1000,
        "events": [],
    }
    assert snapshot_json(view_of(INFO, two_cpu_sample()))["drops"] is None


def test_findings_are_the_trackers_standing_ones() -> None:
    sample = two_cpu_sample(interval_s=2.0)  # CPU 0's backlog dropped 4: 2/s
    standing = FindingsTracker().update(sample.ts, find(INFO, sample))
    obj = snapshot_json(view_of(INFO, sample))
    assert [a.finding.id for a in standing] == [f["id"] for f in obj["findings"]]
    (f,) = [f for f in obj["findings"] if f["id"] == "backlog_drops:cpu0"]
    assert f["evidence"]["softnet_dropped"] == 4 and f["evidence"]["per_s"] == 2.0
    assert f["knob"] == "net.core.netdev_max_backlog"


def test_recursion_misses_are_shown_in_the_json_the_cost_line_and_the_export() -> None:
    """Runs the kernel skipped (one of the probe's programs was already running on that CPU) are
    events netscope missed: reported like a full ring buffer's lost events."""
    import dataclasses

    from netscope.model.counters import RunningTotals
    from netscope.model.sample import OwnCost
    from netscope.model.timeline import Timeline
    from netscope.prometheus import _counters
    from netscope.ui.home_pane import cost_line

    base = two_cpu_sample()
    probes = (dataclasses.replace(base.probes[0], recursion_misses=7), *base.probes[1:])
    sample = dataclasses.replace(base, probes=probes, cost=OwnCost(1.0, 50_000_000, (), False))
    assert snapshot_json(view_of(INFO, sample))["probes"][0]["recursion_misses"] == 7
    timeline = Timeline(INFO)
    timeline.add(sample)
    assert "recursion misses 7" in cost_line(timeline.shown()).plain
    totals = RunningTotals(INFO)
    totals.add(sample)
    metric = next(m for m in _counters(totals) if m.name == "netscope_bpf_recursion_misses")
    by_probe = {s.labels["probe"]: s.value for s in metric.samples if s.name.endswith("_total")}
    assert by_probe == {p.name: 7 if p is probes[0] else 0 for p in probes}
