"""The way out against the kernel's own counts, through `netscope snapshot --json` (the "tx" section):
a tbf qdisc with a 3000-byte limit under a UDP flood drops exactly what `tc -s -j qdisc` counts
(read by the test), the drop reasons agree, and qdisc_drops names the limit in force; BQL's inflight
and limit are sysfs's for the TX queues of a device in the test's namespace (an ifb, its limits
written by the test), a veth has none, and the host's NIC's limit is sysfs's between two reads; the
wait of sampled packets in a full tbf is what Little's law makes of tc's own backlog and rate."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.netns import VethPair, flood_result, flood_udp, netns_inode, udp_traffic
from tests.kernel.test_findings import findings, snapshots, take

SUBNET = 62
TBF_LIMIT = 3000  # bytes: about 40 of the flood's datagrams


def tc_root(pair: VethPair) -> dict[str, Any]:
    """The sender veth's root qdisc as `tc -s -j qdisc` reads it."""
    out = pair.in_ns(pair.sender_ns, "tc", "-s", "-j", "qdisc", "show", "dev", pair.sender_dev)
    return next(q for q in json.loads(out) if q.get("root"))


def tx_devices(out: list[dict[str, Any]], netns: int, device: str) -> list[dict[str, Any]]:
    return [d for obj in out for d in obj["tx"]["devices"] if d["netns"] == netns and d["device"] == device]


def test_qdisc_drops_are_tc_s_count_and_the_finding_names_the_limit(pair: VethPair) -> None:
    tbf = ("tc", "qdisc", "add", "dev", pair.sender_dev, "root", "tbf", "rate", "4mbit", "burst", "5kb")
    pair.in_ns(pair.sender_ns, *tbf, "limit", str(TBF_LIMIT))
    try:
        args = ("-i", "1", "-n", "6", "--sections", "tx,drops", "--detail-every", "1")
        with snapshots(*args) as (proc, out):
            take(proc, out, 1)
            before = tc_root(pair)
            sent, _ = flood_result(flood_udp(pair, 2.0, port=9, pps=20_000))
            time.sleep(0.3)  # what the tbf held drains at its rate: no drop after the flood
            after = tc_root(pair)
            take(proc, out, 5)
    finally:
        pair.in_ns(pair.sender_ns, "tc", "qdisc", "del", "dev", pair.sender_dev, "root")
    dropped = after["drops"] - before["drops"]
    assert 1000 < dropped < sent, (dropped, sent)
    netns = netns_inode(pair.sender_ns)
    rows = tx_devices(out[1:], netns, pair.sender_dev)
    roots = [q for d in rows for q in d["qdiscs"] if q["parent"] == "root"]
    assert {q["kind"] for q in roots} == {"tbf"} and {q["limit"] for q in roots} == {
        after["options"]["limit"]
    }
    print(f"sent {sent}, tc dropped {dropped}, netscope {sum(q['drops'] for q in roots)}")
    assert sum(q["drops"] for q in roots) == dropped  # the kernel's own counter, exactly
    sent_by_tbf = after["packets"] - before["packets"]  # ARP or ND may pass outside the test's reads
    assert sent_by_tbf <= sum(q["packets"] for q in roots) <= sent_by_tbf + 10
    assert sum(d["qdisc_drops"] for d in rows) == dropped
    reasons = sum(d["drop_reasons"].get("QDISC_DROP", 0) for d in rows)
    assert reasons == dropped, reasons  # each dropped skb freed once, with its reason
    ifindex = rows[0]["ifindex"]
    (finding,) = [f for i, f in findings(out).items() if i.startswith(f"qdisc_drops:{netns}:{ifindex}:")]
    assert finding["knob"].startswith("tbf limit on") and finding["current"] == f"{TBF_LIMIT}b"
    assert finding["stage"] == "tx" and finding["evidence"]["limit"] == f"{TBF_LIMIT}b"
    assert finding["suggestion"].startswith(
        f"ip netns exec {pair.sender_ns} tc qdisc show dev {pair.sender_dev}"
    )


def sysfs_bql(ns: str, dev: str) -> dict[int, tuple[int, int]] | None:
    """tx queue -> (inflight, limit) as sysfs shows them in namespace `ns` ("": the host's); None
    when the device keeps no BQL."""
    script = (
        f"cd /sys/class/net/{dev}/queues && for q in tx-*; do [ -d $q/byte_queue_limits ] && "
        f"echo ${{q#tx-}} $(cat $q/byte_queue_limits/inflight) $(cat $q/byte_queue_limits/limit); done; true"
    )
    inside = ("ip", "netns", "exec", ns) if ns else ()
    lines = subprocess.run([*inside, "sh", "-c", script], capture_output=True, text=True, check=True).stdout
    found = {int(q): (int(a), int(b)) for q, a, b in (line.split() for line in lines.splitlines())}
    return found or None


def host_nic() -> str | None:
    """A device of the host with BQL (a NIC's driver), to read without sending anything to it."""
    for dev in sorted(Path("/sys/class/net").iterdir()):
        if (dev / "device").exists() and sysfs_bql("", dev.name):
            return dev.name
    return None


def test_bql_is_sysfs_for_queues_in_any_namespace(pair: VethPair) -> None:
    ns, ifb = pair.receiver_ns, "ifbtx"
    pair.in_ns(ns, "ip", "link", "add", ifb, "numtxqueues", "2", "type", "ifb")
    try:
        pair.in_ns(ns, "ip", "link", "set", ifb, "up")
        limits = {0: 4321, 1: 8765}  # written by the test: BQL sets them only on TX completions
        for queue, limit in limits.items():
            path = f"/sys/class/net/{ifb}/queues/tx-{queue}/byte_queue_limits/limit"
            pair.in_ns(ns, "sh", "-c", f"echo {limit} > {path}")
        truth = sysfs_bql(ns, ifb)
        assert truth == {q: (0, limit) for q, limit in limits.items()}, truth
        assert sysfs_bql(ns, pair.receiver_dev) is None  # veth keeps no BQL
        nic = host_nic()
        host_before = sysfs_bql("", nic) if nic else None
        # The namespace carries traffic: its devices are listed.
        with udp_traffic(pair, 200), snapshots("-i", "1", "-n", "3", "--sections", "tx") as (proc, out):
            take(proc, out, 3)
        host_after = sysfs_bql("", nic) if nic else None
    finally:
        pair.in_ns(ns, "ip", "link", "del", ifb)
    netns = netns_inode(ns)
    (shown,) = {
        tuple((q["queue"], q["bql_inflight"], q["bql_limit"]) for q in d["queues"])
        for d in tx_devices(out[1:], netns, ifb)
    }
    assert shown == tuple((q, 0, limit) for q, limit in limits.items())
    veth = tx_devices(out[1:], netns, pair.receiver_dev)
    assert veth and all(q["bql_limit"] is None for d in veth for q in d["queues"])
    if nic is not None and host_before is not None and host_after is not None:
        own = [
            d for obj in out[1:] for d in obj["tx"]["devices"] if d["device"] == nic and not d["netns_name"]
        ]
        for d in own:
            for q in d["queues"]:
                low, high = sorted((host_before[q["queue"]][1], host_after[q["queue"]][1]))
                assert low <= q["bql_limit"] <= high, (q, host_before, host_after)


def test_the_wait_in_a_full_tbf_is_its_backlog_over_its_rate(pair: VethPair) -> None:
    """A flood keeps a 1 Mbit/s tbf full: every packet waits for the bytes queued before it to go
    out at the rate. The test reads the backlog tc shows (bytes) during the flood; netscope's median
    wait of the sampled packets is that backlog over the rate, within a third."""
    rate_bps = 1_000_000
    tbf = ("tc", "qdisc", "add", "dev", pair.sender_dev, "root", "tbf", "rate", "1mbit", "burst", "2kb")
    pair.in_ns(pair.sender_ns, *tbf, "limit", str(TBF_LIMIT))
    try:
        args = ("-i", "1", "-n", "5", "--sections", "tx", "--detail-every", "1")
        with snapshots(*args) as (proc, out):
            take(proc, out, 1)
            flood = flood_udp(pair, 3.0, port=9, pps=5_000)
            backlogs = []
            while flood.poll() is None:
                time.sleep(0.1)
                backlogs.append(tc_root(pair)["backlog"])
            flood_result(flood)
            take(proc, out, 4)
    finally:
        pair.in_ns(pair.sender_ns, "tc", "qdisc", "del", "dev", pair.sender_dev, "root")
    full = sorted(backlogs)[len(backlogs) // 2]
    expected_us = full * 8 / rate_bps * 1e6
    rows = [
        d
        for d in tx_devices(out[1:], netns_inode(pair.sender_ns), pair.sender_dev)
        if d["qdisc_wait_sampled"]
    ]
    busiest = max(rows, key=lambda d: d["qdisc_wait_sampled"])
    print(f"tc backlog median {full} B: {expected_us:.0f} us; netscope p50 {busiest['qdisc_wait_p50_us']} us")
    assert full > TBF_LIMIT / 2, backlogs
    assert abs(busiest["qdisc_wait_p50_us"] - expected_us) <= expected_us / 3, (busiest, expected_us)
