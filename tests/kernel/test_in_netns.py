"""netscope started with `ip netns exec NS` (a fresh /sys, no tracefs mounted in it): its probes go
live and the devices it calls its own are that namespace's, with the traffic the test sends into it."""

from __future__ import annotations

import json
import sys

from harness.netns import VethPair, run, udp_traffic
from harness.tmux import REPO

SUBNET = 88


def test_snapshot_inside_another_namespace(pair: VethPair) -> None:
    command = ["snapshot", "--json", "-i", "0.5", "-n", "2", "--sections", "cpus,rings,drops"]
    with udp_traffic(pair, 500):
        out = run(
            "ip",
            "netns",
            "exec",
            pair.receiver_ns,
            "sh",
            "-c",
            f"cd {REPO} && {sys.executable} -m netscope {' '.join(command)}",
        )
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 2
    last = objects[-1]
    states = {p["name"]: p["state"] for p in last["probes"]}
    assert all(states[name] == "live" for name in ("hardirq", "softirq", "napi", "drops", "rings")), states
    devices = {d["device"]: d for d in last["devices"]}
    assert pair.receiver_dev in devices and devices[pair.receiver_dev]["netns_name"] == "", devices.keys()
    # Its own devices are this namespace's. The host's show up only when they carried or dropped
    # traffic meanwhile (as any namespace's do), and then under the host namespace's name.
    own = {d["device"] for d in last["devices"] if d["netns_name"] == ""}
    assert own <= {"lo", pair.receiver_dev}, own
    assert devices[pair.receiver_dev]["rx_packets"] > 0
