"""Stage balance against the kernel: one induced loss per test, in namespaces joined by veth. Each
stage of the receiver's namespace closes (|unaccounted| within 1% of what came in, over the test),
and the loss sits at the right stage under the right cause, equal to the count the test reads itself
(nft's rule counter, /proc/net/snmp of the namespace, `ip -s` link stats)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness.netns import (
    VethPair,
    idle_receiver,
    loadgen,
    netns_inode,
    nft_drop,
    send_udp,
    snmp,
    veth_pair,
)
from netscope.model.balance import StageBalance, build_balance, sum_balances
from netscope.sources.live import LiveSource
from tests.kernel import truth
from tests.kernel.test_findings import snapshots, take

SUBNET = 60
COUNT = 4000


def balance_of(
    live: LiveSource, pair: VethPair, act: Callable[[], None], ns: str = ""
) -> dict[str, StageBalance]:
    """The stages of the receiver's namespace (or `ns`) summed over the intervals that hold `act`'s
    traffic (one interval closed right before it, two after it, so that nothing of it is left out)."""
    live.sample()
    act()
    time.sleep(0.2)
    rows = [row for _ in range(2) for row in build_balance(live.sample())]
    netns = netns_inode(ns or pair.receiver_ns)
    return {row.stage: row for row in sum_balances(r for r in rows if r.netns == netns)}


def assert_closed(
    stages: dict[str, StageBalance], sent: int, reached: tuple[str, ...] = ("device", "ip", "transport")
) -> None:
    """The stages `reached` took in what was sent (and a few frames more: ARP, IPv6's own) and close
    within 1% of it; the others, where only the namespace's own IPv6 chatter came, within their noise;
    the way out (the namespace's replies: ICMP port unreachable, rate-limited) within its noise."""
    assert set(stages) == {"device", "ip", "transport", "tx"}, stages
    for name, row in stages.items():
        if name == "tx":
            assert abs(row.unaccounted) <= row.noise and row.checked, row
        elif name in reached:
            assert sent <= row.in_ <= sent + 20, row
            assert abs(row.unaccounted) <= 0.01 * row.in_, row
        else:
            assert row.in_ <= 20 and abs(row.unaccounted) <= row.noise, row
        assert row.beyond_noise == 0, row


def lost(row: StageBalance, cause: str) -> int:
    return dict(row.lost).get(cause, 0)


def quiet(row: StageBalance) -> bool:
    """Nothing of the test's traffic lost there: at most a few of the namespace's own IPv6 frames
    (a router solicitation with no route: Ip6 InNoRoutes)."""
    return row.lost_total <= 5


def test_datagrams_to_a_closed_port_are_lost_at_transport_as_noports(
    live: LiveSource, pair: VethPair
) -> None:
    before = snmp(pair.receiver_ns)
    stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4011))
    no_ports = snmp(pair.receiver_ns)["NoPorts"] - before["NoPorts"]
    assert no_ports == COUNT
    assert_closed(stages, COUNT)
    assert lost(stages["transport"], "Udp NoPorts") == no_ports
    assert quiet(stages["device"]) and quiet(stages["ip"])


def test_a_full_receive_buffer_is_lost_at_transport_as_rcvbuf_errors(
    live: LiveSource, pair: VethPair
) -> None:
    with idle_receiver(pair, 4012):
        before = snmp(pair.receiver_ns)
        stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4012))
        after = snmp(pair.receiver_ns)
    rcvbuf = after["RcvbufErrors"] - before["RcvbufErrors"]
    assert COUNT - 10 <= rcvbuf <= COUNT  # the tiny buffer held a few, never read
    assert_closed(stages, COUNT)
    assert lost(stages["transport"], "Udp RcvbufErrors") == rcvbuf
    assert lost(stages["transport"], "Udp InErrors") == 0  # InErrors counted them too: named once
    assert quiet(stages["device"]) and quiet(stages["ip"])


def test_an_nft_input_drop_is_lost_at_ip_as_netfilter_drop(live: LiveSource, pair: VethPair) -> None:
    with nft_drop(pair, 4013) as dropped:
        stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4013))
        counted = dropped()
    assert counted == COUNT
    assert_closed(stages, COUNT, reached=("device", "ip"))
    assert lost(stages["ip"], "NETFILTER_DROP") == counted
    assert quiet(stages["device"])
    assert stages["transport"].in_ <= 20  # nothing of it was delivered


def test_an_nft_netdev_ingress_drop_is_lost_at_the_device_stage(live: LiveSource, pair: VethPair) -> None:
    with nft_drop(pair, 4014, ingress=True) as dropped:
        stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4014))
        counted = dropped()
    assert counted == COUNT
    assert_closed(stages, COUNT, reached=("device",))
    assert lost(stages["device"], "NETFILTER_DROP") == counted
    assert lost(stages["ip"], "NETFILTER_DROP") == 0
    assert stages["ip"].in_ <= 20  # it never reached IP


BACKLOG = Path("/proc/sys/net/core/netdev_max_backlog")


def rx_dropped(pair: VethPair) -> int:
    """The receiver veth's rx_dropped, as `ip -s` reads it."""
    out = pair.in_ns(pair.receiver_ns, "ip", "-s", "-j", "link", "show", "dev", pair.receiver_dev)
    return int(json.loads(out)[0]["stats64"]["rx"]["dropped"])


def test_backlog_drops_are_lost_at_the_device_stage_and_the_host_backlog(pair: VethPair) -> None:
    """Through `snapshot --json`: RPS steers the veth's packets to CPU 1, the sender runs on CPU 0,
    the backlog holds 16. veth counts rx_packets only for what the backlog took: the device stage's
    in adds its core drops back, and they are its loss; softnet counts them on the host's stage."""
    rps = Path(f"/sys/class/net/{pair.receiver_dev}/queues/rx-0/rps_cpus")
    in_ns_sh = ("ip", "netns", "exec", pair.receiver_ns, "sh", "-c")
    saved = BACKLOG.read_text()
    subprocess.run([*in_ns_sh, f"echo 2 > {rps}"], check=True)
    dropped_before, softnet_before = rx_dropped(pair), sum(d for _, d, _ in truth.softnet())
    try:
        BACKLOG.write_text("16")
        with snapshots("-i", "1", "-n", "5", "--sections", "cpus,drops") as (proc, out):
            take(proc, out, 1)
            sender = ("ip", "netns", "exec", pair.sender_ns, "taskset", "-c", "0", str(loadgen()), "send")
            flood = subprocess.run(
                [*sender, pair.receiver_ip, "9", "2"], capture_output=True, text=True, check=True
            )
            take(proc, out, 4)
    finally:
        BACKLOG.write_text(saved)
        subprocess.run([*in_ns_sh, f"echo 0 > {rps}"], check=True)
    sent = int(flood.stdout.split()[0])
    dropped = rx_dropped(pair) - dropped_before
    softnet_dropped = sum(d for _, d, _ in truth.softnet()) - softnet_before
    assert dropped > 1000, f"the backlog dropped only {dropped}"
    netns = netns_inode(pair.receiver_ns)

    def stage(name: str, where: int) -> tuple[int, int, dict[str, int]]:
        rows = [b for obj in out for b in obj["balance"] if b["stage"] == name and b["netns"] == where]
        lost: dict[str, int] = {}
        for b in rows:
            for cause, n in b["lost"].items():
                lost[cause] = lost.get(cause, 0) + n
        return sum(b["in"] for b in rows), sum(b["unaccounted"] for b in rows), lost

    device_in, device_unaccounted, device_lost = stage("device", netns)
    assert sent <= device_in <= sent + 20
    assert abs(device_unaccounted) <= 0.01 * device_in
    assert device_lost.get("rx_dropped") == dropped
    host_in, host_unaccounted, host_lost = stage("backlog", 0)
    assert host_unaccounted == 0 and host_in >= device_in
    assert dropped <= host_lost.get("softnet dropped", 0) <= softnet_dropped
    silent = [f["evidence"] for obj in out for f in obj["findings"] if f["id"].startswith("silent_loss")]
    # Each interval's device stage beside the finding: CI once saw 1,896 unaccounted of 252,922
    # against a noise of 1,276 (not reproduced since; the intervals tell which read drifted).
    intervals = [
        (b["in"], b["out"], b["lost"], b["unaccounted"], b["noise"])
        for obj in out
        for b in obj["balance"]
        if b["stage"] == "device" and b["netns"] == netns
    ]
    assert not silent, ([sorted(e.items()) for e in silent], intervals)


def test_a_veth_with_gro_on_is_shown_but_not_checked(live: LiveSource) -> None:
    """`ethtool -K gro on` gives a veth a NAPI instance of its own, and GRO may merge what it
    received before IP counts it: its device stage is shown, never called a silent loss."""
    with veth_pair(subnet=63, name="gro") as pair:
        pair.in_ns(pair.receiver_ns, "ethtool", "-K", pair.receiver_dev, "gro", "on")
        stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4015))
    assert COUNT <= stages["device"].in_ <= COUNT + 20
    assert not stages["device"].checked and stages["device"].beyond_noise == 0
    assert stages["ip"].checked  # IP counts skbs on both sides


def qdisc_drops(pair: VethPair) -> int:
    """The sender veth's root qdisc drops, as `tc -s` reads them."""
    out = pair.in_ns(pair.sender_ns, "tc", "-s", "-j", "qdisc", "show", "dev", pair.sender_dev)
    return int(next(q for q in json.loads(out) if q.get("root"))["drops"])


def test_the_way_out_closes_what_ip_handed_to_the_devices_against_what_they_sent(
    live: LiveSource, pair: VethPair
) -> None:
    stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4016), ns=pair.sender_ns)
    tx = stages["tx"]
    assert COUNT <= tx.in_ <= COUNT + 20 and tx.checked, tx
    assert abs(tx.unaccounted) <= 0.01 * tx.in_ and tx.beyond_noise == 0, tx
    assert quiet(tx), tx


def test_a_qdisc_that_drops_is_lost_on_the_way_out_as_qdisc_drops(live: LiveSource, pair: VethPair) -> None:
    """A tbf qdisc of one packet's burst and limit at 1 Mbit/s on the sender's veth: most of a burst
    of datagrams is dropped there, as many as `tc -s` counts; the rest are sent."""
    pair.in_ns(pair.sender_ns, "tc", "qdisc", "replace", "dev", pair.sender_dev, "root", "tbf", "rate",
               "1mbit", "burst", "1600", "limit", "1600")  # fmt: skip
    try:
        before = qdisc_drops(pair)
        stages = balance_of(live, pair, lambda: send_udp(pair, COUNT, port=4017), ns=pair.sender_ns)
        dropped = qdisc_drops(pair) - before
    finally:
        pair.in_ns(pair.sender_ns, "tc", "qdisc", "del", "dev", pair.sender_dev, "root")
    assert dropped > COUNT // 2, f"the qdisc dropped only {dropped}"
    tx = stages["tx"]
    assert COUNT <= tx.in_ <= COUNT + 20, tx
    assert lost(tx, "qdisc drops") == dropped
    assert abs(tx.unaccounted) <= 0.01 * tx.in_ and tx.beyond_noise == 0, tx
