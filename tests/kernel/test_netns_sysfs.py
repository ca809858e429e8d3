"""sysfs of another network namespace, read from a thread of netscope's: that namespace's devices
and RPS masks, and nothing mounted where the rest of the process or the host can see it."""

from __future__ import annotations

from pathlib import Path

from harness.netns import VethPair
from netscope.sources import procfs
from netscope.sources.netns_sysfs import read_sysfs_in

SUBNET = 91


def devices(root: Path, _name: str) -> list[str]:
    return sorted(p.name for p in (root / "class" / "net").iterdir())


def test_another_namespace_is_read_in_its_own_sysfs(pair: VethPair) -> None:
    mounts, host_devices = Path("/proc/self/mountinfo").read_text(), devices(Path("/sys"), "")
    queue = f"/sys/class/net/{pair.receiver_dev}/queues/rx-0/rps_cpus"
    pair.in_ns(pair.receiver_ns, "sh", "-c", f"echo 2 > {queue}")
    try:
        paths = {ns: f"/run/netns/{ns}" for ns in (pair.receiver_ns, pair.sender_ns, "gone")}
        seen = read_sysfs_in(paths, devices)
        masks = read_sysfs_in(paths, procfs.read_rps_masks)
    finally:
        pair.in_ns(pair.receiver_ns, "sh", "-c", f"echo 0 > {queue}")
    assert seen == {pair.receiver_ns: ["lo", pair.receiver_dev], pair.sender_ns: ["lo", pair.sender_dev]}
    assert masks[pair.receiver_ns] == ((f"rps_cpus:{pair.receiver_dev}@{pair.receiver_ns}/rx-0", "2"),)
    assert masks[pair.sender_ns] == ()
    # the mounts went with the thread: this process and the host see what they saw
    assert Path("/proc/self/mountinfo").read_text() == mounts
    assert devices(Path("/sys"), "") == host_devices and pair.receiver_dev not in host_devices
