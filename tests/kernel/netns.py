"""Network namespaces joined by a veth pair, for kernel tests. Always cleaned up.

Traffic stays inside namespaces the test creates, on 10.200.x.x.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def run(*cmd: str, input_text: str | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input_text, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class VethPair:
    sender_ns: str
    receiver_ns: str
    sender_ip: str
    receiver_ip: str
    receiver_dev: str

    def in_ns(self, ns: str, *cmd: str) -> str:
        return run("ip", "netns", "exec", ns, *cmd)


@contextmanager
def veth_pair(subnet: int = 77) -> Iterator[VethPair]:
    """ns `nsA-<pid>` (10.200.<subnet>.1) <-> ns `nsB-<pid>` (10.200.<subnet>.2)."""
    tag = f"{os.getpid() % 100000}"
    a, b = f"nstA{tag}", f"nstB{tag}"
    dev_a, dev_b = f"vnsa{tag}", f"vnsb{tag}"
    pair = VethPair(a, b, f"10.200.{subnet}.1", f"10.200.{subnet}.2", dev_b)
    try:
        run("ip", "netns", "add", a)
        run("ip", "netns", "add", b)
        run("ip", "link", "add", dev_a, "netns", a, "type", "veth", "peer", "name", dev_b, "netns", b)
        for ns, dev, ip in ((a, dev_a, pair.sender_ip), (b, dev_b, pair.receiver_ip)):
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


SENDER = """
import socket, sys
dst, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * 32
for _ in range(count):
    s.sendto(payload, (dst, port))
"""


def send_udp(pair: VethPair, count: int, port: int = 9) -> None:
    """`count` 32-byte UDP datagrams from the sender namespace to the receiver (closed port)."""
    pair.in_ns(pair.sender_ns, sys.executable, "-c", SENDER, pair.receiver_ip, str(port), str(count))


def disk_interrupts(rounds: int) -> None:
    """Cause block-device hardirqs (virtio-blk here): small writes, each forced out with fsync."""
    path = f"/var/tmp/netscope-irq-{os.getpid()}"
    try:
        with open(path, "wb", buffering=0) as f:
            for i in range(rounds):
                f.write(os.urandom(4096))
                f.seek(i % 4 * 4096)
                os.fsync(f.fileno())
    finally:
        os.unlink(path)
