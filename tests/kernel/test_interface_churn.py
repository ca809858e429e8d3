"""Devices appearing and vanishing while netscope runs (a veth pair created and deleted every half
second, in netscope's namespace and in a test namespace that carries traffic): no probe fails, no
sample is lost, the device list follows, and the TUI's Rings pane keeps answering."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

from harness.netns import SENDER, VethPair, run, send_udp
from harness.tmux import netscope_in_tmux
from netscope.model.sample import ProbeState
from netscope.sources.live import PROBES, LiveSource

SUBNET = 84
TAG = f"{os.getpid() % 10000}"
HOST_DEV = f"nsch{TAG}"  # in netscope's own namespace: no address, no traffic
NS_DEV = f"nschn{TAG}"  # in the receiver's namespace, which carries traffic


@contextmanager
def churning(pair: VethPair) -> Iterator[threading.Event]:
    """Both veth pairs created, up for 0.5 s, deleted, down for 0.5 s, until the block ends."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            run("ip", "link", "add", HOST_DEV, "type", "veth", "peer", "name", f"{HOST_DEV}p")
            run(
                "ip",
                "-n",
                pair.receiver_ns,
                "link",
                "add",
                NS_DEV,
                "type",
                "veth",
                "peer",
                "name",
                f"{NS_DEV}p",
            )
            run("ip", "link", "set", HOST_DEV, "up")
            run("ip", "-n", pair.receiver_ns, "link", "set", NS_DEV, "up")
            stop.wait(0.5)
            run("ip", "link", "del", HOST_DEV)
            run("ip", "-n", pair.receiver_ns, "link", "del", NS_DEV)
            stop.wait(0.5)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()
        subprocess.run(["ip", "link", "del", HOST_DEV], capture_output=True, check=False)


def test_samples_follow_devices_that_come_and_go(pair: VethPair) -> None:
    source = LiveSource()
    seen: dict[str, list[bool]] = {HOST_DEV: [], NS_DEV: []}
    try:
        for start in source.need(PROBES):
            start()
        send_udp(pair, 100)  # the receiver's namespace carries traffic: its devices are listed
        source.sample()
        with churning(pair):
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                send_udp(pair, 50)
                time.sleep(0.2)
                sample = source.sample()
                assert all(p.state == ProbeState.LIVE for p in sample.probes), sample.probes
                names = {d.ifname for d in sample.devices}
                for dev, presence in seen.items():
                    presence.append(dev in names)
    finally:
        source.close()
    for dev, presence in seen.items():
        # Listed while it exists, gone once deleted: both, more than once, in 8 s of 1 s cycles.
        assert presence.count(True) >= 3 and presence.count(False) >= 3, (dev, presence)
        changes = sum(a != b for a, b in pairwise(presence))
        assert changes >= 4, (dev, presence)


def test_tui_rings_pane_keeps_answering_while_devices_churn(pair: VethPair, tmp_path: Path) -> None:
    """Under the churn, a device that stays a few seconds shows on the Rings pane and goes again
    (a device needs two reads, one interval apart, before it has rates to show)."""
    steady = f"nschs{TAG}"
    with netscope_in_tmux(tmp_path, "churn", (120, 40)) as tui, churning(pair):
        tui.wait_screen(lambda s: "Receive path" in s, 10, "the first frame")
        tui.keys("r")
        try:
            run("ip", "link", "add", steady, "type", "veth", "peer", "name", f"{steady}p")
            tui.wait_screen(lambda s: steady in s, 10, "the new device on the Rings pane")
            tui.keys("c")
            tui.wait_screen(lambda s: "RX run/s" in s, 5, "the CPUs pane, under the churn")
            tui.keys("r")
        finally:
            subprocess.run(["ip", "link", "del", steady], capture_output=True, check=False)
        tui.wait_screen(lambda s: steady not in s and "Rings" in s, 10, "the device gone from the pane")
        tui.keys("q")
        assert tui.exit_code(5) == 0


def test_a_deleted_namespace_is_not_kept_alive(pair: VethPair) -> None:
    """netscope keeps a netlink socket open in each namespace it reads, and a socket holds its
    namespace: once a namespace is deleted, netscope must let it go. The kernel says so itself: a
    freed namespace takes its veth end along, and the peer in the receiver's namespace goes too."""
    doomed, dev, peer = f"nschd{TAG}", f"nschd{TAG}", f"nschdp{TAG}"
    source = LiveSource()
    try:
        run("ip", "netns", "add", doomed)
        run(*f"ip -n {pair.receiver_ns} link add {peer} type veth peer name {dev} netns {doomed}".split())
        for ns, name, ip in ((doomed, dev, "10.200.184.1"), (pair.receiver_ns, peer, "10.200.184.2")):
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", name)
            run("ip", "-n", ns, "link", "set", name, "up")
        read_there = False
        deadline = time.monotonic() + 10
        while not read_there:  # traffic, so that its devices are listed: read over its socket
            assert time.monotonic() < deadline, "the doomed namespace's device was never listed"
            run("ip", "netns", "exec", doomed, sys.executable, "-c", SENDER, "10.200.184.2", "9", "50")
            time.sleep(0.3)
            read_there = any(d.ifname == dev and d.rx_packets + d.tx_packets for d in source.sample().devices)
        run("ip", "netns", "del", doomed)
        deadline = time.monotonic() + 15
        while peer in run("ip", "-n", pair.receiver_ns, "-o", "link", "show"):
            assert time.monotonic() < deadline, "the deleted namespace is still alive after 15 s"
            source.sample()
            time.sleep(0.3)
    finally:
        source.close()
        subprocess.run(["ip", "netns", "del", doomed], capture_output=True, check=False)
        subprocess.run(["ip", "-n", pair.receiver_ns, "link", "del", peer], capture_output=True, check=False)
