"""The TX view, its stages on the home screen, its findings and its JSON, from hand-made intervals:
each device's qdiscs (the root first), its TX queues with BQL, its drop reasons of the way out;
the send stage from IP's counters; qdisc_drops naming the limit in force and the knob that sets it;
bql_limited only while a queue is stopped with packets waiting in the qdisc."""

from __future__ import annotations

import dataclasses

from netscope.model.findings import bql_limited, find, qdisc_drops
from netscope.model.json_encoder import snapshot_json
from netscope.model.pipeline import tx_stages
from netscope.model.rings import build_rings_view
from netscope.model.sample import (
    DeviceStats,
    DropBucket,
    DropReasonCount,
    DropsSample,
    HostInfo,
    NetnsSnmp,
    QdiscStats,
    Sample,
    SnmpCount,
)
from netscope.model.tx import build_tx_view, tc_handle
from tests.unit.samples import two_cpu_sample, view_of

HOST, POD = 4026531840, 4026532999
INFO = HostInfo("box", "6.18.44", (0, 1), 0.0, HOST)
ROOT = 0xFFFFFFFF


def qdisc(kind: str, handle: int = 0, parent: int = ROOT, **counts: int | str | None) -> QdiscStats:
    base: dict[str, int | str | None] = dict(
        packets=0, bytes=0, drops=0, requeues=0, overlimits=0, qlen=0, backlog=0, limit=None, limit_unit=""
    )
    base.update(counts)
    return QdiscStats(handle, parent, kind, **base)  # type: ignore[arg-type]


def device(netns: int, ifindex: int, name: str, *qdiscs: QdiscStats, **fields: object) -> DeviceStats:
    base: dict[str, object] = dict(
        rx_packets=0,
        tx_packets=0,
        rx_missed=0,
        rx_over=0,
        rx_fifo=0,
        rx_dropped=0,
        tx_dropped=0,
        bql=(),
        rx_bytes=0,
    )
    base.update(fields)
    return DeviceStats(
        netns,
        ifindex,
        name,
        "",
        None,
        None,
        None,
        None,
        qdisc_drops=0,
        qdiscs=qdiscs,
        **base,  # type: ignore[arg-type]
    )


def sample(
    *devices: DeviceStats, drops: DropsSample | None = None, snmp: tuple[NetnsSnmp, ...] = ()
) -> Sample:
    return dataclasses.replace(
        two_cpu_sample(interval_s=2.0),
        devices=devices,
        drops=drops,
        netns_snmp=snmp,
        netns_names=((POD, "pod1"),),
    )


def tx_drops(*buckets: tuple[int, str, int, int, int]) -> DropsSample:
    """(reason id, name, netns, ifindex, count) buckets."""
    reasons = {(r, name) for r, name, _, _, _ in buckets}
    return DropsSample(
        tuple(
            DropReasonCount(r, name, "", (sum(b[4] for b in buckets if b[0] == r), 0)) for r, name in reasons
        ),
        tuple(DropBucket(r, 0, "", 0x800, ifi, "", ns, (n, 0)) for r, _, ns, ifi, n in buckets),
        (),
        0,
        0,
        0,
        0,
        1000,
    )


FAST = qdisc("pfifo_fast", packets=2000, bytes=3_000_000, drops=40, requeues=2, qlen=1000, backlog=1_500_000,
             limit=1000, limit_unit="packets", limit_knob="txqueuelen")  # fmt: skip
TBF = qdisc("tbf", 0x80010000, packets=500, bytes=50_000, drops=60, overlimits=900, qlen=3, backlog=2900,
            limit=3000, limit_unit="bytes")  # fmt: skip


def test_devices_with_their_qdiscs_queues_bql_and_reasons() -> None:
    eth0 = device(HOST, 2, "eth0", FAST, tx_packets=2000, tx_bytes=3_000_000, tx_queues=2, rx_queues=2,
                  bql=((0, 3000, 3000), (1, 0, 6000)), txqueuelen=1000)  # fmt: skip
    veth = device(POD, 5, "veth0", TBF, qdisc("pfifo", 0x10000, 0x80010001, drops=1), tx_packets=500,
                  tx_bytes=50_000, tx_queues=1, rx_queues=1, kind="veth")  # fmt: skip
    drops = tx_drops(
        (60, "QDISC_DROP", POD, 5, 60), (55, "NEIGH_FAILED", HOST, 2, 4), (2, "NO_SOCKET", HOST, 2, 9)
    )
    s = sample(eth0, veth, drops=drops)
    view = build_tx_view(s, build_rings_view(s, INFO))
    first, second = view.devices
    assert (first.ifname, first.tx_pps, first.root_kind, first.queued) == (
        "eth0",
        1000.0,
        "pfifo_fast",
        (1000, 1_500_000),
    )
    assert first.qdisc_drops == 40 and first.root is not None and first.root.limit == "1000p txqueuelen"
    assert [(q.queue, q.bql_inflight, q.bql_limit, q.bql_full) for q in first.queues] == [
        (0, 3000, 3000, True),
        (1, 0, 6000, False),
    ]
    assert first.reasons == (("NEIGH_FAILED", 4),)  # NO_SOCKET is not the way out's
    assert second.label == "veth0@pod1" and second.qdisc_drops == 60  # the root's, not its child's too
    assert [q.label for q in second.qdiscs] == ["tbf 8001: root", "pfifo 1: parent 8001:1"]
    assert second.root is not None and second.root.limit == "3000b"
    assert second.queues[0].bql_limit is None  # veth: no BQL
    assert view.reasons == (("QDISC_DROP", 60), ("NEIGH_FAILED", 4))
    assert (view.qdisc_packets, view.qdisc_drops, view.tx_packets) == (2500, 100, 2500)
    assert tc_handle(ROOT) == "root" and tc_handle(0x10001) == "1:1" and tc_handle(0x80010000) == "8001:"


def test_the_way_out_in_three_stages() -> None:
    """socket send: Ip/Ip6 OutRequests, its losses by counter (IP_OUTNOROUTES not again by reason;
    not SndbufErrors: UDP counts there what the qdisc dropped) and the reasons before the qdisc;
    qdisc: what root qdiscs sent and dropped (noqueue's none); driver: stats64 tx_packets and
    tx_dropped; the bottleneck the stage that loses the most."""
    eth0 = device(HOST, 2, "eth0", FAST, tx_packets=2000, tx_bytes=3_000_000, tx_dropped=2)
    lo = device(HOST, 1, "lo", qdisc("noqueue", packets=0), tx_packets=600, tx_bytes=6000, kind="loopback")
    snmp = (
        NetnsSnmp(
            HOST,
            (
                SnmpCount("Ip", "OutRequests", 2700),
                SnmpCount("Udp", "SndbufErrors", 10),
                SnmpCount("Ip", "OutNoRoutes", 6),
            ),
        ),
    )
    s = sample(eth0, lo, snmp=snmp)
    view = build_tx_view(s, build_rings_view(s, INFO))
    per_s = {"IP_OUTNOROUTES": 3.0, "NEIGH_FAILED": 2.0, "NO_SOCKET": 50.0, "TUNNEL_TXINFO": 1.0}
    send, queue, driver = tx_stages(view, per_s, None)
    assert send.rate == 1350.0
    assert dict(send.losses) == {"Ip OutNoRoutes": 3.0, "NEIGH_FAILED": 2.0}
    assert queue.rate == 1000.0 and dict(queue.losses) == {
        "qdisc drops": 20.0
    }  # pfifo_fast's; noqueue sends none
    assert driver.rate == 1300.0 and dict(driver.losses) == {"tx_dropped": 1.0, "TUNNEL_TXINFO": 1.0}
    unread = build_tx_view(sample(eth0), build_rings_view(sample(eth0), INFO))
    assert tx_stages(unread, {}, None)[0].rate is None  # OutRequests not read: no number, not 0


def test_qdisc_drops_names_the_limit_in_force_and_its_knob() -> None:
    eth0 = device(HOST, 2, "eth0", FAST, tx_packets=2000, txqueuelen=1000)
    veth = device(POD, 5, "veth0", TBF, tx_packets=500, kind="veth")
    s = sample(eth0, veth)
    findings = {f.id: f for f in find(INFO, s)}
    fast, tbf = findings[f"qdisc_drops:{HOST}:2:0"], findings[f"qdisc_drops:{POD}:5:{0x80010000}"]
    assert fast.knob == "txqueuelen of eth0" and fast.current == "1000" and fast.pane == "tx"
    assert fast.suggestion.startswith("ip link set dev eth0 txqueuelen 4000")
    assert dict(fast.evidence)["drops"] == 40 and dict(fast.evidence)["per_s"] == 20.0
    assert tbf.knob == "tbf limit on veth0@pod1" and tbf.current == "3000b"
    assert tbf.suggestion.startswith("ip netns exec pod1 tc qdisc show dev veth0")
    assert "raise the rate or send less" in tbf.suggestion  # overlimits: a shaper at its rate
    quiet = dataclasses.replace(FAST, drops=1)  # 0.5/s: under the threshold
    assert not list(qdisc_drops(finding_input(sample(device(HOST, 2, "eth0", quiet)))))


def finding_input(s: Sample):  # type: ignore[no-untyped-def]
    from netscope.model.cpu import build_cpu_view
    from netscope.model.findings import FindingInput

    return FindingInput(INFO, s, build_cpu_view(s, INFO.cpus), {})


def test_bql_limited_only_while_a_queue_is_stopped_and_the_qdisc_holds_packets() -> None:
    stopped = device(HOST, 2, "eth0", FAST, bql=((0, 3000, 3000), (1, 10, 6000)))
    (f,) = bql_limited(finding_input(sample(stopped)))
    assert f.id == f"bql_limited:{HOST}:2" and f.current == "limit 3000"
    assert dict(f.evidence)["tx_queues_at_limit"] == "0" and dict(f.evidence)["qdisc_qlen"] == 1000
    assert f.severity.value == "warning"  # the qdisc drops too
    empty_qdisc = device(HOST, 2, "eth0", dataclasses.replace(FAST, qlen=0), bql=((0, 3000, 3000),))
    below = device(HOST, 2, "eth0", FAST, bql=((0, 2999, 3000),))
    assert not list(bql_limited(finding_input(sample(empty_qdisc))))
    assert not list(bql_limited(finding_input(sample(below))))


def test_tx_json() -> None:
    eth0 = device(
        HOST, 2, "eth0", FAST, tx_packets=2000, tx_bytes=3_000_000, bql=((0, 3000, 3000),), txqueuelen=1000
    )
    drops = tx_drops((60, "QDISC_DROP", HOST, 2, 40))
    tx = snapshot_json(view_of(INFO, sample(eth0, drops=drops)))["tx"]
    assert tx["drop_reasons"] == {"QDISC_DROP": 40} and tx["out_requests"] is None
    (d,) = [d for d in tx["devices"] if d["device"] == "eth0"]
    assert (d["tx_packets"], d["qdisc_drops"], d["txqueuelen"], d["drop_reasons"]) == (
        2000,
        40,
        1000,
        {"QDISC_DROP": 40},
    )
    (q,) = d["qdiscs"]
    assert q == {
        "handle": "0:",
        "parent": "root",
        "kind": "pfifo_fast",
        "packets": 2000,
        "bytes": 3_000_000,
        "drops": 40,
        "requeues": 2,
        "overlimits": 0,
        "qlen": 1000,
        "backlog_bytes": 1_500_000,
        "limit": 1000,
        "limit_unit": "packets",
        "limit_knob": "txqueuelen",
    }
    assert d["queues"][0]["bql_inflight"] == 3000 and d["queues"][0]["bql_limit"] == 3000
