"""Record tests/fixtures/veth-traffic.nsrec from this kernel (root): UDP over a veth pair between two
namespaces, with the three drop causes the kernel tests use (closed port, full receive buffer, an
nft drop rule) and block-device interrupts. The UI tests and screenshots replay it.

Run: .venv/bin/python scripts/record_fixture.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kernel.netns import disk_interrupts, idle_receiver, nft_drop, run, send_udp, veth_pair  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "veth-traffic.nsrec"


def main() -> None:
    with veth_pair(subnet=90) as pair, idle_receiver(pair, 5555), nft_drop(pair, 7777):
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
                send_udp(pair, 20000, port=9)  # NO_SOCKET
                send_udp(pair, 3000, port=5555)  # SOCKET_RCVBUFF
                send_udp(pair, 1000, port=7777)  # NETFILTER_DROP
                disk_interrupts(30)

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
    print(OUT)


if __name__ == "__main__":
    main()
