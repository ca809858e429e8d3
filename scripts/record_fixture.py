"""Record tests/fixtures/veth-traffic.nsrec from this kernel (root): UDP over a veth pair between two
namespaces, with the three drop causes the kernel tests use (closed port, full receive buffer, an
nft drop rule), block-device interrupts, and two UDP readers for copy latency (one draining every
100 ms, one blocked in recv); a TCP connection that loses 1 segment in 20 at the receiver (an nft
rule: retransmits, the flow screen's TCP ends); and a second pair whose sender shapes with a tbf
qdisc that drops (the TX pane's). The UI tests and screenshots replay it.

Run: .venv/bin/python scripts/record_fixture.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.netns import (  # noqa: E402
    TCP_READER,
    TCP_SENDER,
    UDP_READER,
    UDP_SENDER,
    disk_interrupts,
    idle_receiver,
    in_ns,
    nft_drop,
    run,
    send_udp,
    veth_pair,
)

OUT = ROOT / "tests" / "fixtures" / "veth-traffic.nsrec"
TCP_PORT = 6301
LOSS = """table inet netscope_loss {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport %d numgen random mod 20 == 0 counter drop
    }
}
"""


def main() -> None:
    with (
        veth_pair(subnet=90) as pair,
        veth_pair(subnet=99, name="tx") as shaped,
        idle_receiver(pair, 5555),
        nft_drop(pair, 7777),
    ):
        tbf = ("tc", "qdisc", "add", "dev", shaped.sender_dev, "root", "tbf", "rate", "1mbit", "burst", "5kb")
        shaped.in_ns(shaped.sender_ns, *tbf, "limit", "3000")
        # GRO on the receiver and no TSO on the sender: veth delivers through its own NAPI instance.
        run("ip", "netns", "exec", pair.receiver_ns, "ethtool", "-K", pair.receiver_dev, "gro", "on")
        run(
            "ip",
            "netns",
            "exec",
            pair.sender_ns,
            "ethtool",
            "-K",
            pair.sender_dev,
            "tso",
            "off",
        )
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                send_udp(shaped, 3000, port=9)  # over the tbf: QDISC_DROP
                send_udp(pair, 20000, port=9)  # NO_SOCKET
                send_udp(pair, 3000, port=5555)  # SOCKET_RCVBUFF
                send_udp(pair, 1000, port=7777)  # NETFILTER_DROP
                disk_interrupts(30)

        # Copy latency: a reader draining every 100 ms and one blocked in recv, fed steadily.
        readers = [
            in_ns(pair.receiver_ns, UDP_READER, port, period, "40")
            for port, period in (("6001", "0.1"), ("6002", "0"))
        ]
        for r in readers:
            assert r.stdout is not None and r.stdout.readline().strip() == "ready"
        feeder = in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, "38", "6001", "6002")
        run("ip", "netns", "exec", pair.receiver_ns, "nft", "-f", "-", input_text=LOSS % TCP_PORT)
        tcp_reader = in_ns(pair.receiver_ns, TCP_READER, str(TCP_PORT), "0")
        assert tcp_reader.stdout is not None and tcp_reader.stdout.readline().strip() == "ready"
        tcp_sender = in_ns(pair.sender_ns, TCP_SENDER, pair.receiver_ip, str(TCP_PORT), "38")
        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            subprocess.run(
                [sys.executable, "-m", "netscope", "record", "-o", str(OUT), "-i", "1", "-n", "10"],
                check=True,
            )
        finally:
            stop.set()
            sender.join()
            for proc in (feeder, *readers, tcp_sender, tcp_reader):
                proc.wait()
    print(OUT)


if __name__ == "__main__":
    main()
