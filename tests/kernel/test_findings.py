"""Findings from real symptoms, through `netscope snapshot --json` (what a script would read): each
test causes one bottleneck in its own namespaces and restores every setting it changed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.netns import UDP_READER, VethPair, in_ns, loadgen, nft_drop, send_udp
from harness.tmux import REPO
from tests.kernel import truth

SUBNET = 88
BACKLOG = Path("/proc/sys/net/core/netdev_max_backlog")
BUDGET = Path("/proc/sys/net/core/netdev_budget")


@contextmanager
def snapshots(*args: str, netns: str = "") -> Iterator[tuple[subprocess.Popen[str], list[dict[str, Any]]]]:
    """`netscope snapshot --json ARGS` (inside `netns` when given); the list fills as intervals end
    (read it with `take`)."""
    inside = ("ip", "netns", "exec", netns) if netns else ()
    proc = subprocess.Popen(
        [*inside, sys.executable, "-m", "netscope", "snapshot", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        yield proc, []
    finally:
        proc.kill()
        proc.wait()


def take(proc: subprocess.Popen[str], out: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    for _ in range(n):
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "netscope ended"
        out.append(json.loads(line))
    return out


def findings(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every finding seen, by id, as its latest interval showed it."""
    return {f["id"]: f for obj in objects for f in obj["findings"]}


def flooded_snapshots(
    pair: VethPair, knob: Path, value: str, seconds: float, count: int, sections: str
) -> tuple[list[dict[str, Any]], int]:
    """`count` one-second snapshots with `knob` set to `value` (restored after), a flood from CPU 0
    of `seconds` after the first: the intervals, and how many datagrams the flood sent."""
    saved = knob.read_text()
    try:
        knob.write_text(value)
        with snapshots("-i", "1", "-n", str(count), "--sections", sections) as (proc, out):
            take(proc, out, 1)
            sender = ("ip", "netns", "exec", pair.sender_ns, "taskset", "-c", "0", str(loadgen()), "send")
            flood = subprocess.run(
                [*sender, pair.receiver_ip, "9", str(seconds)], capture_output=True, text=True, check=True
            )
            take(proc, out, count - 1)
    finally:
        knob.write_text(saved)
    return out, int(flood.stdout.split()[0])


def test_backlog_drops_name_netdev_max_backlog_and_the_cpu(pair: VethPair) -> None:
    """RPS steers the veth's packets to CPU 1, the sender runs on CPU 0, the backlog holds 16."""
    rps = Path(f"/sys/class/net/{pair.receiver_dev}/queues/rx-0/rps_cpus")
    in_ns_sh = ("ip", "netns", "exec", pair.receiver_ns, "sh", "-c")
    subprocess.run([*in_ns_sh, f"echo 2 > {rps}"], check=True)
    before = truth.softnet()
    try:
        out, sent = flooded_snapshots(pair, BACKLOG, "16", 3.5, 6, "cpus,drops")
    finally:
        subprocess.run([*in_ns_sh, f"echo 0 > {rps}"], check=True)
    kernel = truth.softnet()[1][1] - before[1][1]  # CPU 1's backlog drops around the command
    assert sent > 0
    dropped = sum(c["backlog_drops"] for obj in out for c in obj["cpus"] if c["cpu"] == 1)
    # The flood lies inside the command's intervals, and they inside the test's window.
    assert kernel > 1000 and kernel - 50 <= dropped <= kernel, (dropped, kernel)
    # The drop reason counts on the sending CPU (0), softnet on the full backlog's (1): over the
    # whole flood they are the kernel's two counts of the same drops. (Interval by interval they are
    # read a few milliseconds apart, more on a box the flood keeps busy.)
    reasons = sum(r["count"] for obj in out for r in (obj["drops"] or []) if r["reason"] == "CPU_BACKLOG")
    assert abs(reasons - kernel) <= max(50, kernel // 100), (reasons, kernel)
    found = findings(out)
    assert "backlog_drops:cpu1" in found, list(found)
    f = found["backlog_drops:cpu1"]
    assert (f["knob"], f["current"]) == ("net.core.netdev_max_backlog", "16")
    assert f["evidence"]["cpu"] == 1 and f["evidence"]["softnet_dropped"] > 0
    # The evidence is the interval's own counts: softnet's on CPU 1 and the drop reason's.
    last, g = next(
        (obj, g)
        for obj in reversed(out)
        for g in obj["findings"]
        if g["id"] == "backlog_drops:cpu1" and g["quiet_s"] == 0  # its evidence is this interval's
    )
    assert g["evidence"]["softnet_dropped"] == next(c["backlog_drops"] for c in last["cpus"] if c["cpu"] == 1)
    reason = next(r["count"] for r in last["drops"] if r["reason"] == "CPU_BACKLOG")
    assert g["evidence"]["drop_reason_CPU_BACKLOG"] == reason, g
    # the steering, read in the receiver's namespace (its sysfs; netscope runs in the host's)
    assert f["evidence"]["rps_cpus"] == f"{pair.receiver_dev}@{pair.receiver_ns}/rx-0=2", f
    assert f["severity"] in ("warning", "critical") and f["stage"] == "softirq"


def test_time_squeeze_names_netdev_budget_and_counts_the_kernels_squeezes(pair: VethPair) -> None:
    """A budget of one packet per NET_RX run under a flood from CPU 0: NET_RX stops with work left
    on nearly every run. The finding names the budget in force, and each interval's squeezes add up
    to what softnet_stat counted around the command (read by the test)."""
    before = truth.softnet()
    out, _ = flooded_snapshots(pair, BUDGET, "1", 2.5, 5, "cpus")
    after = truth.softnet()
    kernel = sum(a[2] - b[2] for a, b in zip(after, before, strict=True))
    ours = sum(c["time_squeeze"] for obj in out for c in obj["cpus"])
    # The flood lies inside the command's intervals, and they inside the test's window.
    assert kernel >= 1000 and 0.95 * kernel - 10 <= ours <= kernel, (ours, kernel)
    found = findings(out)
    squeezed = [key for key in found if key.startswith("time_squeeze:cpu")]
    assert squeezed, list(found)
    f = found[squeezed[0]]
    cpu = f["evidence"]["cpu"]
    assert f["knob"] == "net.core.netdev_budget / netdev_budget_usecs" and f["current"].startswith("1 / ")
    assert "net.core.netdev_budget=600" in f["suggestion"], f["suggestion"]  # never below 1 x 2
    last, g = next(
        (obj, g) for obj in reversed(out) for g in obj["findings"] if g["id"] == f["id"] and g["quiet_s"] == 0
    )
    assert g["evidence"]["time_squeeze"] == next(c["time_squeeze"] for c in last["cpus"] if c["cpu"] == cpu)


def test_slow_reader_and_closed_port_are_named(pair: VethPair) -> None:
    """A reader with a tiny buffer that drains every 0.2 s, and a port nobody listens on."""
    says_rcvbuf = 'print("ready", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), flush=True)'
    tiny = UDP_READER.replace("1 << 20", "1024").replace('print("ready", flush=True)', says_rcvbuf)
    reader = in_ns(pair.receiver_ns, tiny, "6002", "0.2", "8")
    assert reader.stdout is not None
    ready, rcvbuf = reader.stdout.readline().split()  # the kernel doubles SO_RCVBUF, to a minimum
    assert ready == "ready"
    try:
        with snapshots("-i", "1", "-n", "5", "--detail-every", "1") as (proc, out):
            take(proc, out, 1)
            for _ in range(3):
                send_udp(pair, 2000, port=6002)
                send_udp(pair, 2000, port=9)
                time.sleep(0.5)
            take(proc, out, 4)
    finally:
        reader.kill()
        reader.wait()
    found = findings(out)
    slow = next(
        (f for key, f in found.items() if key.startswith("rcvbuf_drops:") and key.endswith(":6002")), None
    )
    assert slow is not None, list(found)
    assert f"(pid {reader.pid})" in slow["summary"] and "port 6002" in slow["summary"], slow
    assert slow["evidence"]["pid"] == reader.pid and slow["evidence"]["port"] == 6002
    assert slow["knob"].startswith("net.core.rmem_default / rmem_max")
    assert slow["evidence"]["so_rcvbuf"] == int(rcvbuf)  # sk_rcvbuf, read by the copy-latency probe
    assert slow["current"].endswith(f"its SO_RCVBUF {rcvbuf}") and f"{int(rcvbuf):,}-byte" in slow["summary"]
    closed = next(
        (f for key, f in found.items() if key.startswith("no_socket:") and key.endswith(":udp:9")), None
    )
    assert closed is not None, list(found)
    assert "port 9" in closed["summary"] and closed["evidence"]["port"] == 9


@pytest.mark.parametrize("inside", [True, False], ids=["netscope-in-that-netns", "netscope-in-the-host"])
def test_netfilter_drops_point_at_the_rule_and_its_counter(pair: VethPair, inside: bool) -> None:
    """An nft rule drops in the receiver's namespace; netscope runs there, or in the host's: the
    finding names that rule, with the rule's own counter (and the namespace, seen from the host)."""
    with (
        nft_drop(pair, 7777) as packets,
        snapshots("-i", "1", "-n", "3", netns=pair.receiver_ns if inside else "") as (proc, out),
    ):
        take(proc, out, 1)
        send_udp(pair, 3000, port=7777)
        take(proc, out, 2)
        counted = packets()
    f = findings(out).get("netfilter_drops")
    assert f is not None, [obj["findings"] for obj in out]
    assert counted == 3000
    netns = "" if inside else f" in netns {pair.receiver_ns}"
    assert f"inet netscope_test input #2{netns}: packets {counted}" in f["current"], f
    assert f["evidence"]["top_dport"] == "udp/7777"


def test_idle_box_has_no_warnings() -> None:
    with snapshots("-i", "1", "-n", "6") as (proc, out):
        take(proc, out, 6)
    warnings = [f for obj in out for f in obj["findings"] if f["severity"] != "info"]
    assert warnings == [], warnings
    assert all("findings" in obj for obj in out)
