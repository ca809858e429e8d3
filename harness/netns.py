"""Network namespaces joined by a veth pair, for kernel tests. Always cleaned up.

Traffic stays inside namespaces the test creates, on 10.200.x.x.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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
    sender_dev: str

    def in_ns(self, ns: str, *cmd: str) -> str:
        return run("ip", "netns", "exec", ns, *cmd)


@contextmanager
def veth_pair(subnet: int = 77, name: str = "", queues: int = 1) -> Iterator[VethPair]:
    """ns `nstA<pid><name>` (10.200.<subnet>.1) <-> ns `nstB<pid><name>` (10.200.<subnet>.2), each
    veth with `queues` RX and TX queues."""
    tag = f"{os.getpid() % 100000}{name}"
    a, b = f"nstA{tag}", f"nstB{tag}"
    dev_a, dev_b = f"vnsa{tag}", f"vnsb{tag}"
    pair = VethPair(a, b, f"10.200.{subnet}.1", f"10.200.{subnet}.2", dev_b, dev_a)
    n = ("numrxqueues", str(queues), "numtxqueues", str(queues))
    try:
        run("ip", "netns", "add", a)
        run("ip", "netns", "add", b)
        run("ip", "link", "add", dev_a, *n, "netns", a, "type", "veth", "peer", "name", dev_b, *n, "netns", b)
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
    """`count` 32-byte UDP datagrams from the sender namespace to the receiver."""
    pair.in_ns(pair.sender_ns, sys.executable, "-c", SENDER, pair.receiver_ip, str(port), str(count))


@contextmanager
def udp_traffic(pair: VethPair, batch: int = 2000) -> Iterator[None]:
    """`send_udp` batches, one after another, until the block ends."""
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            send_udp(pair, batch)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join()


LOADGEN_C = Path(__file__).resolve().parents[1] / "bench" / "loadgen.c"


def loadgen() -> Path:
    """bench/loadgen.c built once per version of its source (gcc is installed by `make test`)."""
    source = LOADGEN_C.read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "netscope"
    binary = cache / f"loadgen-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(f".{os.getpid()}")
        run("gcc", "-O2", "-Wall", "-o", str(partial), str(LOADGEN_C))
        partial.rename(binary)
    return binary


def flood_udp(
    pair: VethPair,
    seconds: float,
    port: int = 9,
    nice: int = 0,
    pps: float = 0,
    sport: int = 0,
    cpu: int | None = None,
) -> subprocess.Popen[str]:
    """Send 64-byte datagrams as fast as one core can (sendmmsg), or `pps` a second, for `seconds`,
    at scheduling priority `nice`, from source port `sport` (0: any), pinned to `cpu` (None: any);
    read the result with `flood_result`."""
    pin = ("taskset", "-c", str(cpu)) if cpu is not None else ()
    return subprocess.Popen(
        [
            *("ip", "netns", "exec", pair.sender_ns, "nice", "-n", str(nice), *pin),
            str(loadgen()),
            *("send", pair.receiver_ip, str(port), f"{seconds}", "32", str(sport), str(pps)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def flood_flows(
    pair: VethPair, seconds: float, sockets: int, ports: int, base_port: int = 20000, pps: float = 0
) -> subprocess.Popen[str]:
    """`sockets` x `ports` concurrent UDP flows from the sender namespace (each socket in turn to
    every port from `base_port` on, every flow an equal share), as fast as one core can or `pps` a
    second, for `seconds`; read the result with `flood_result`."""
    return subprocess.Popen(
        [
            *("ip", "netns", "exec", pair.sender_ns, str(loadgen()), "flows", pair.receiver_ip),
            *(str(base_port), str(ports), str(sockets), f"{seconds}", str(pps)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


@contextmanager
def udp_sink(
    pair: VethPair, port: int, seconds: float, nice: int = 0, period_ms: float = 0
) -> Iterator[subprocess.Popen[str]]:
    """A reader on `port` in the receiver namespace that drains as fast as it can for `seconds` (or
    every `period_ms`, a slow reader), at scheduling priority `nice`; read what it got with
    `flood_result` (within the block)."""
    slow = (f"{period_ms}",) if period_ms else ()
    proc = subprocess.Popen(
        [
            *("ip", "netns", "exec", pair.receiver_ns, "nice", "-n", str(nice)),
            *(str(loadgen()), "recv", str(port), f"{seconds}", *slow),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def reader_waits(reader: subprocess.Popen[str]) -> tuple[int, int, int]:
    """A slow `udp_sink`'s own measure so far: datagrams read, and the p50 and p99 (ns, within 5 µs)
    of their waits from the kernel's receive timestamp to the read. Asked with SIGUSR1; answered
    after its next drain."""
    assert reader.stdout is not None
    reader.send_signal(signal.SIGUSR1)
    read, p50, p99 = (int(v) for v in reader.stdout.readline().split())
    return read, p50, p99


def flood_result(flood: subprocess.Popen[str]) -> tuple[int, float]:
    """How many datagrams a `flood_udp` process sent, and over how many seconds of its own clock."""
    out = flood.communicate()[0].split()
    assert flood.returncode == 0 and len(out) == 2, f"loadgen failed ({flood.returncode}): {out}"
    return int(out[0]), float(out[1])


def snmp(ns: str, proto: str = "Udp") -> dict[str, int]:
    """The `proto` section of /proc/net/snmp in namespace `ns`: the kernel's own counters."""
    lines = [line.split() for line in run("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").splitlines()]
    head, values = [row for row in lines if row[0] == f"{proto}:"]
    return {k: int(v) for k, v in zip(head[1:], values[1:], strict=True)}


def netns_inode(ns: str) -> int:
    return os.stat(f"/run/netns/{ns}").st_ino


RECEIVER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
time.sleep(600)
"""


@contextmanager
def idle_receiver(pair: VethPair, port: int) -> Iterator[None]:
    """A UDP socket with a tiny SO_RCVBUF that never reads: every datagram past the first few is
    dropped with SOCKET_RCVBUFF."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", pair.receiver_ns, sys.executable, "-c", RECEIVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


NFT_TABLE = """table inet netscope_test {
    chain input {
        type filter hook input priority 0; policy accept;
        udp dport %d counter drop
    }
}
"""


def nft_counter(pair: VethPair, family: str, table: str) -> int:
    """The packets counted by the first rule with a counter in the receiver namespace's `table`."""
    out = run("ip", "netns", "exec", pair.receiver_ns, "nft", "-j", "list", "table", family, table)
    for item in json.loads(out)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError("no counter in the nft rule")


INGRESS_TABLE = """table netdev netscope_test {
    chain ingress {
        type filter hook ingress device "%s" priority 0; policy accept;
        udp dport %d counter drop
    }
}
"""


@contextmanager
def nft_drop(pair: VethPair, port: int, ingress: bool = False) -> Iterator[Callable[[], int]]:
    """An nft rule in the receiver namespace that counts and drops UDP to `port` at input (or, with
    `ingress`, at the receiver veth's netdev ingress, before IP); yields a reader of the rule's
    packet counter."""
    family = "netdev" if ingress else "inet"
    table = INGRESS_TABLE % (pair.receiver_dev, port) if ingress else NFT_TABLE % port
    run("ip", "netns", "exec", pair.receiver_ns, "nft", "-f", "-", input_text=table)
    try:
        yield lambda: nft_counter(pair, family, "netscope_test")
    finally:
        subprocess.run(
            ["ip", "netns", "exec", pair.receiver_ns, "nft", "delete", "table", family, "netscope_test"],
            capture_output=True,
            check=False,
        )


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


# Readers and senders whose timing the latency tests (and the UI fixture) control.
UDP_READER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
period = float(sys.argv[2])
print("ready", flush=True)
got = 0
end = time.time() + float(sys.argv[3])
s.settimeout(0.2)
while time.time() < end:
    if period:  # drain every `period` seconds
        time.sleep(period)
        s.setblocking(False)
        try:
            while True:
                got += len(s.recv(2048))
        except BlockingIOError:
            pass
    else:  # blocked in recv: reads as soon as data arrives
        try:
            got += len(s.recv(2048))
        except socket.timeout:
            pass
print(got, flush=True)
"""

UDP_SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    for port in sys.argv[3:]:
        s.sendto(b"x" * 64, (sys.argv[1], int(port)))
    time.sleep(0.001)
"""

TCP_READER = r"""
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
period = float(sys.argv[2])
got = 0
while True:
    if period:
        time.sleep(period)
        conn.setblocking(False)
        try:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    raise EOFError
                got += len(data)
        except BlockingIOError:
            continue
        except EOFError:
            break
    else:
        data = conn.recv(1 << 20)
        if not data:
            break
        got += len(data)
print(got, flush=True)
"""

TCP_SENDER = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    c.sendall(b"y" * 1000)
    time.sleep(0.002)
c.close()
"""


def in_ns(ns: str, code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )


# A reader that times its own waits: each datagram's kernel receive stamp (SO_TIMESTAMPNS, taken as
# the veth hands it to the stack) against the moment recvmsg returned it, draining every `period` s.
TIMED_READER = r"""
import json, socket, struct, sys, time
port, period, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: a drain's backlog fits
SO_TIMESTAMPNS = 35  # linux/asm-generic/socket.h (SO_TIMESTAMPNS_OLD); Python does not name it
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.bind(("0.0.0.0", port))
s.setblocking(False)
print("ready", flush=True)
waits = []
end = time.time() + seconds
while time.time() < end:
    time.sleep(period)
    while True:
        try:
            _, anc, _, _ = s.recvmsg(2048, 64)
        except BlockingIOError:
            break
        now = time.time_ns()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                waits.append(now - (sec * 10**9 + nsec))
print(json.dumps(waits), flush=True)
"""

# Sockets one after another on ports BASE.., each sent COUNT datagrams of 100 bytes over loopback in
# its namespace, read, and closed: the kernel may give a new socket a closed one's address. Starts
# on a line from stdin.
SOCKET_CHURN = r"""
import socket, sys, time
ip, base, n, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((ip, base + i))
    for _ in range(count):
        tx.sendto(b"x" * 100, (ip, base + i))
    got = sum(len(rx.recv(2048)) for _ in range(count))
    assert got == 100 * count, got
    rx.close()
    time.sleep(0.03)  # the closed socket is freed after an RCU grace period
print("done", flush=True)
"""
