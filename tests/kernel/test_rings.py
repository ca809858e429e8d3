"""Rings figures against the kernel's own counters: veth link stats64, `ethtool -g`, and napi:napi_poll
counted by a separate BPF program in the test."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.netns import VethPair, netns_inode, run, send_udp, udp_traffic, veth_pair
from harness.tmux import REPO
from netscope.model.rings import build_rings_view
from netscope.sources.live import LiveSource
from tests.kernel import truth
from tests.kernel.truth import link_packets

SUBNET = 76
PACKETS = 5000


def test_veth_rx_tx_equal_link_stats64(live: LiveSource, pair: VethPair) -> None:
    live.sample()
    sent_before = link_packets(pair.sender_ns, pair.sender_dev)
    recv_before = link_packets(pair.receiver_ns, pair.receiver_dev)
    send_udp(pair, PACKETS)
    recv_after = truth.settled(lambda: link_packets(pair.receiver_ns, pair.receiver_dev))
    sent_after = link_packets(pair.sender_ns, pair.sender_dev)
    sample = live.sample()
    assert sample.queues is not None
    a, b = netns_inode(pair.sender_ns), netns_inode(pair.receiver_ns)
    tx = sum(q.packets for q in sample.queues if q.netns == a and q.tx and q.ifname == pair.sender_dev)
    rx = sum(q.packets for q in sample.queues if q.netns == b and not q.tx and q.ifname == pair.receiver_dev)
    kernel_tx = sent_after[1] - sent_before[1]
    kernel_rx = recv_after[0] - recv_before[0]
    assert PACKETS <= kernel_tx <= PACKETS + 20 and PACKETS <= kernel_rx <= PACKETS + 20  # and ARP
    assert abs(tx - kernel_tx) <= 0.02 * kernel_tx, (tx, kernel_tx)
    assert abs(rx - kernel_rx) <= 0.02 * kernel_rx, (rx, kernel_rx)
    # The device rows read those namespaces' stats64 over netlink too, from the interval after the
    # namespace first carried traffic.
    view = build_rings_view(live.sample(), live.info)
    receiver = next(d for d in view.devices if d.netns == b and d.ifname == pair.receiver_dev)
    assert receiver.label.endswith(f"@{pair.receiver_ns}")
    assert receiver.stats is not None and receiver.stats.rx_ring is None  # veth: no ring settings


def nic() -> str:
    """The machine's first device backed by hardware (or a hypervisor's: virtio), with ring
    settings ethtool can read: whatever the machine has, not this VM's eth0 by name."""
    for path in sorted(Path("/sys/class/net").iterdir()):
        if (path / "device").exists():
            done = subprocess.run(["ethtool", "-g", path.name], capture_output=True, text=True)
            if done.returncode == 0 and "Current hardware settings:" in done.stdout:
                return path.name
    pytest.fail("no device with ring settings on this machine: the test needs one (a NIC or virtio_net)")


def test_nic_ring_sizes_and_queues_equal_ethtool_and_sysfs(live: LiveSource) -> None:
    dev = nic()
    out = subprocess.run(["ethtool", "-g", dev], capture_output=True, text=True, check=True).stdout
    maxima, current = out.split("Current hardware settings:")
    rx_max, tx_max = (int(re.search(rf"^{k}:\s+(\d+)", maxima, re.M).group(1)) for k in ("RX", "TX"))  # type: ignore[union-attr]
    rx, tx = (int(re.search(rf"^{k}:\s+(\d+)", current, re.M).group(1)) for k in ("RX", "TX"))  # type: ignore[union-attr]
    live.sample()
    view = build_rings_view(live.sample(), live.info)
    eth0 = next(d for d in view.devices if d.ifname == dev and d.netns == live.info.netns)
    assert eth0.stats is not None
    assert (eth0.stats.rx_ring, eth0.stats.rx_ring_max, eth0.stats.tx_ring, eth0.stats.tx_ring_max) == (
        rx,
        rx_max,
        tx,
        tx_max,
    )
    lo = next(d for d in view.devices if d.ifname == "lo" and d.netns == live.info.netns)
    assert lo.stats is not None and lo.stats.rx_ring is None  # shown as n/a, not 0
    # netdev genl: a NAPI driver names the NAPI instance of each RX queue sysfs lists; per-queue
    # stats, where the driver reports them (virtio_net does), have packets and bytes.
    rx_queues = {int(q.name[3:]) for q in Path(f"/sys/class/net/{dev}/queues").glob("rx-*")}
    napi = {q for kind, q, napi_id in eth0.stats.queue_napi if kind == "rx" and napi_id > 0}
    assert not napi or napi == rx_queues, (napi, rx_queues)
    names = {name for kind, q, name, _ in eth0.stats.qstats if kind == "rx"}
    assert not names or names >= {"rx-packets", "rx-bytes"}, names


COUNTER = r"""
BPF_ARRAY(napi_total, u64, 2);
RAW_TRACEPOINT_PROBE(napi_poll)
{
    u32 polls = 0, work = 1;
    u64 *p = napi_total.lookup(&polls);
    u64 *w = napi_total.lookup(&work);
    if (p) __sync_fetch_and_add(p, 1);
    if (w) __sync_fetch_and_add(w, (int)ctx->args[1]);
    return 0;
}
"""


def test_napi_polls_and_work_equal_a_direct_count(live: LiveSource, pair: VethPair) -> None:
    """GRO on the receiving veth, with TSO off on the sender, makes veth deliver through a NAPI
    instance of its own (veth_poll) rather than the CPU backlog."""
    import ctypes

    from bcc import BPF

    from netscope.probes.base import COMPILE_LOCK

    run("ip", "netns", "exec", pair.receiver_ns, "ethtool", "-K", pair.receiver_dev, "gro", "on")
    run("ip", "netns", "exec", pair.sender_ns, "ethtool", "-K", pair.sender_dev, "tso", "off")
    with COMPILE_LOCK.priority(-1):
        counter = BPF(text=COUNTER.encode())
    try:
        table = counter[b"napi_total"]

        def direct() -> tuple[int, int]:
            return int(table[ctypes.c_int(0)].value), int(table[ctypes.c_int(1)].value)

        live.sample()
        before = direct()
        send_udp(pair, PACKETS)
        truth.settled(lambda: link_packets(pair.receiver_ns, pair.receiver_dev))
        sample = live.sample()
        after = direct()
    finally:
        counter.cleanup()
        run("ip", "netns", "exec", pair.receiver_ns, "ethtool", "-K", pair.receiver_dev, "gro", "off")
        run("ip", "netns", "exec", pair.sender_ns, "ethtool", "-K", pair.sender_dev, "tso", "on")
    assert sample.napi is not None
    polls = sum(sum(n.polls) for n in sample.napi)
    work = sum(sum(n.packets) for n in sample.napi)
    direct_polls, direct_work = after[0] - before[0], after[1] - before[1]
    assert direct_work >= PACKETS
    assert abs(polls - direct_polls) <= max(2, 0.02 * direct_polls), (polls, direct_polls)
    assert abs(work - direct_work) <= max(2, 0.02 * direct_work), (work, direct_work)
    veth = [
        n for n in sample.napi if n.netns == netns_inode(pair.receiver_ns) and n.ifname == pair.receiver_dev
    ]
    assert veth and sum(sum(n.packets) for n in veth) >= PACKETS


def test_unknown_interface_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netscope", "snapshot", "--interface", "nosuchdev0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no such interface: nosuchdev0 (known: " in proc.stderr and "eth0" in proc.stderr
    assert "Traceback" not in proc.stderr


def link_bytes(ns: str, dev: str) -> tuple[int, int]:
    """(rx, tx) bytes of a device: the kernel's stats64."""
    info = truth.link_stats(ns, dev)
    return int(info["rx"]["bytes"]), int(info["tx"]["bytes"])


def test_per_queue_bytes_of_a_two_queue_veth_add_up_to_stats64() -> None:
    """A veth with two queues each way has no per-queue counters: the rings probe's hooks split its
    packets by queue (every one: 1 in 1 forced). Its queues' bytes add up to the device's stats64
    bytes, link-layer header included, both ways."""
    live = LiveSource(sample_rate=1)
    with contextlib.closing(live), veth_pair(SUBNET + 1, name="q", queues=2) as two:
        for ns in (two.sender_ns, two.receiver_ns):  # no IPv6 neighbour traffic in the window
            run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        for start in live.need(("rings",)):
            start()
        send_udp(two, 100)  # the namespaces carry traffic: netscope reads their devices from now
        live.sample()
        live.sample()
        rx0, tx0 = (
            link_bytes(two.receiver_ns, two.receiver_dev)[0],
            link_bytes(two.sender_ns, two.sender_dev)[1],
        )
        send_udp(two, PACKETS)
        truth.settled(lambda: truth.link_packets(two.receiver_ns, two.receiver_dev))
        rx = link_bytes(two.receiver_ns, two.receiver_dev)[0] - rx0
        tx = link_bytes(two.sender_ns, two.sender_dev)[1] - tx0
        view = build_rings_view(live.sample(), live.info)
    receiver = next(d for d in view.devices if d.ifname == two.receiver_dev)
    sender = next(d for d in view.devices if d.ifname == two.sender_dev)
    assert rx >= PACKETS * 60 and tx >= PACKETS * 60
    assert sum(q.rx_bytes for q in receiver.queues) == rx, (receiver.queues, rx)
    assert sum(q.tx_bytes for q in sender.queues) == tx, (sender.queues, tx)


def test_interface_and_netns_narrow_the_json(pair: VethPair) -> None:
    """`snapshot --interface DEV` lists that device alone, `--netns NAME` that namespace's devices
    alone (each namespace's as `ip link` lists them there)."""

    def devices(*args: str) -> set[tuple[str, str]]:
        command = [sys.executable, "-m", "netscope", "snapshot", "--json", "-n", "4", "-i", "0.3", *args]
        with udp_traffic(pair, 50):  # both namespaces carry traffic all along
            done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert done.returncode == 0, done.stderr
        last = json.loads(done.stdout.splitlines()[-1])
        assert {(q["device"], q["netns_name"]) for q in last["queues"]} <= {
            (d["device"], d["netns_name"]) for d in last["devices"]
        }
        return {(d["device"], d["netns_name"]) for d in last["devices"]}

    assert devices("--interface", pair.receiver_dev) == {(pair.receiver_dev, pair.receiver_ns)}
    listed = json.loads(run("ip", "-n", pair.sender_ns, "-j", "link", "show"))
    assert devices("--netns", pair.sender_ns) == {(link["ifname"], pair.sender_ns) for link in listed}
