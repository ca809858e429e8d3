"""IPv6 and ICMP, exact against the receiving namespace's own counters: UDP over IPv6 to a closed
port (a flow of that many packets, all NO_SOCKET drops, against Udp6NoPorts), and ICMP and ICMPv6
echo requests (their flows against Icmp InEchos and Icmp6InEchos)."""

from __future__ import annotations

import sys

from harness.netns import VethPair, netns_inode, run, snmp
from netscope.model.sample import Sample
from netscope.sources.live import LiveSource
from tests.kernel import truth

SUBNET = 92
SENT_V6, ECHOS = 700, 300
SENDER_IP6, RECEIVER_IP6 = f"fd00:200:{SUBNET}::1", f"fd00:200:{SUBNET}::2"

UDP6_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 41600))
for _ in range(int(sys.argv[2])):
    s.sendto(b"x" * 32, (sys.argv[1], 9))
"""

# Echo requests over raw sockets (no ping here): the kernel fills in ICMPv6's checksum itself.
ECHO_SENDER = r"""
import socket, struct, sys
family, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if family == "6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    kind = 128
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    kind = 8
def checksum(b):
    total = sum(struct.unpack(f"!{len(b) // 2}H", b))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
for seq in range(count):
    body = struct.pack("!HH", 4242, seq) + b"p" * 32
    head = struct.pack("!BBH", kind, 0, 0)
    if family == "4":
        head = struct.pack("!BBH", kind, 0, checksum(head + body))
    s.sendto(head + body, (dst, 0))
"""


def snmp6(ns: str) -> dict[str, int]:
    """/proc/net/snmp6 in namespace `ns`: the kernel's IPv6 counters."""
    out = run("ip", "netns", "exec", ns, "cat", "/proc/net/snmp6")
    return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def flow(sample: Sample, proto: int, saddr: str, daddr: str) -> tuple[int, dict[str, int]]:
    assert sample.flows is not None
    rows = [f for f in sample.flows.flows if (f.proto, f.saddr, f.daddr) == (proto, saddr, daddr)]
    return sum(f.rx_packets for f in rows), {r: n for f in rows for r, n in f.drops}


def test_ipv6_and_icmp_flows_and_drops_equal_the_kernels_counters(live: LiveSource, pair: VethPair) -> None:
    for ns, dev, ip in (
        (pair.sender_ns, pair.sender_dev, SENDER_IP6),
        (pair.receiver_ns, pair.receiver_dev, RECEIVER_IP6),
    ):
        run("ip", "-n", ns, "addr", "add", f"{ip}/64", "dev", dev, "nodad")
    v6, v4 = snmp6(pair.receiver_ns), snmp(pair.receiver_ns, "Icmp")
    live.sample()
    pair.in_ns(pair.sender_ns, sys.executable, "-c", UDP6_SENDER, RECEIVER_IP6, str(SENT_V6))
    pair.in_ns(pair.sender_ns, sys.executable, "-c", ECHO_SENDER, "6", RECEIVER_IP6, str(ECHOS))
    pair.in_ns(pair.sender_ns, sys.executable, "-c", ECHO_SENDER, "4", pair.receiver_ip, str(ECHOS))
    truth.settled(lambda: truth.link_packets(pair.receiver_ns, pair.receiver_dev))
    sample = live.sample()
    noports6 = snmp6(pair.receiver_ns)["Udp6NoPorts"] - v6["Udp6NoPorts"]
    echos6 = snmp6(pair.receiver_ns)["Icmp6InEchos"] - v6["Icmp6InEchos"]
    echos4 = snmp(pair.receiver_ns, "Icmp")["InEchos"] - v4["InEchos"]
    assert (noports6, echos6, echos4) == (SENT_V6, ECHOS, ECHOS)

    packets, drops = flow(sample, 17, SENDER_IP6, RECEIVER_IP6)
    assert packets == noports6 and drops == {"NO_SOCKET": noports6}
    assert flow(sample, 58, SENDER_IP6, RECEIVER_IP6)[0] == echos6
    assert flow(sample, 1, pair.sender_ip, pair.receiver_ip)[0] == echos4
    # The drops probe: IPv6's NO_SOCKET drops in the receiving namespace.
    assert sample.drops is not None
    codes = {r.reason for r in sample.drops.reasons if r.name == "NO_SOCKET"}
    receiver = netns_inode(pair.receiver_ns)
    v6_drops = sum(
        sum(b.per_cpu)
        for b in sample.drops.buckets
        if b.reason in codes and b.netns == receiver and b.protocol == 0x86DD
    )
    assert v6_drops == noports6
