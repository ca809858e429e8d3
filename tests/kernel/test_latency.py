"""Copy latency against readers whose timing the test controls, in a namespace it creates."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from netscope.model.latency import build_latency_view
from netscope.model.sample import Sample, rate_of
from netscope.sources.live import LiveSource
from tests.kernel.netns import TCP_READER, TCP_SENDER, UDP_READER, UDP_SENDER, VethPair, in_ns

SUBNET = 75
T = TypeVar("T")


def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"


def window(live: LiveSource, run: float, start: Callable[[], T]) -> tuple[Sample, T]:
    """One interval that covers the traffic `start` starts and the readers' last reads. The
    interval begins before the traffic: a read before it would be the reader's but not netscope's
    (the first sample after attaching can take 150 ms, a slow reader's first drain comes at 100)."""
    live.sample()
    started = start()
    time.sleep(run)
    sample = live.sample()
    assert sample.latency is not None
    return sample, started


def test_udp_slow_and_prompt_readers(live: LiveSource, pair: VethPair) -> None:
    slow = in_ns(pair.receiver_ns, UDP_READER, "6001", "0.1", "3.5")
    prompt = in_ns(pair.receiver_ns, UDP_READER, "6002", "0", "3.5")
    ready(slow)
    ready(prompt)
    sample, sender = window(
        live, 3.8, lambda: in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, "3.0", "6001", "6002")
    )
    latency = sample.latency
    assert latency is not None
    sender.wait()
    slow_got, prompt_got = int(slow.communicate()[0]), int(prompt.communicate()[0])
    procs = {p.pid: p for p in latency.processes}
    assert slow.pid in procs and prompt.pid in procs, procs.keys()
    view = {p.pid: p for p in build_latency_view(latency, 1.0).processes}
    s, p = view[slow.pid].stats, view[prompt.pid].stats
    assert s.p50_ns is not None and 30e6 <= s.p50_ns <= 75e6, s
    assert s.max_ns is not None and 80e6 <= s.max_ns <= 200e6, s
    assert p.p50_ns is not None and p.p50_ns < 1e6, p
    # Reads and bytes are every read's; at this rate every arrival is sampled (rate 1), and the slow
    # reader's backlog (about 100 datagrams a drain, 32 kept) thins what it keeps evenly.
    assert rate_of(sample, "latency") == 1
    assert procs[slow.pid].bytes == slow_got and procs[prompt.pid].bytes == prompt_got
    assert procs[slow.pid].reads == slow_got // 64 and procs[prompt.pid].reads == prompt_got // 64
    assert procs[prompt.pid].count == procs[prompt.pid].reads  # every read of the prompt one timed
    assert procs[slow.pid].reads / 8 <= procs[slow.pid].count <= procs[slow.pid].reads
    assert [sock.sport for sock in latency.sockets if sock.pid == slow.pid] == [6001]
    # Every datagram was followed from the veth into its socket, in microseconds (a stamp is kept
    # per CPU from entry to the socket: one may be lost to an skb entering on that CPU between).
    stack = build_latency_view(latency, 1.0, sample.stack).stack
    datagrams = (slow_got + prompt_got) // 64
    assert sample.stack is not None and rate_of(sample, "stack") == 1
    assert stack is not None and datagrams - 2 <= stack.count <= datagrams
    assert sample.stack.unfollowed <= 0.01 * datagrams
    assert stack.p50_ns is not None and stack.p50_ns < 1e6, stack


def test_tcp_slow_and_prompt_readers(live: LiveSource, pair: VethPair) -> None:
    slow = in_ns(pair.receiver_ns, TCP_READER, "6101", "0.05")
    prompt = in_ns(pair.receiver_ns, TCP_READER, "6102", "0")
    ready(slow)
    ready(prompt)

    def send() -> list[subprocess.Popen[str]]:
        return [in_ns(pair.sender_ns, TCP_SENDER, pair.receiver_ip, port, "3.0") for port in ("6101", "6102")]

    sample, senders = window(live, 3.6, send)
    latency = sample.latency
    assert latency is not None
    for s in senders:
        s.wait()
    slow_got, prompt_got = int(slow.communicate()[0]), int(prompt.communicate()[0])
    procs = {p.pid: p for p in latency.processes}
    view = {p.pid: p for p in build_latency_view(latency, 1.0).processes}
    s, p = view[slow.pid].stats, view[prompt.pid].stats
    # The oldest byte of each read waited about the reader's 50 ms sleep.
    assert s.p50_ns is not None and 25e6 <= s.p50_ns <= 100e6, s
    assert p.p50_ns is not None and p.p50_ns < 1e6, p
    assert procs[slow.pid].bytes == slow_got > 0
    assert procs[prompt.pid].bytes == prompt_got > 0
    sockets = [sock for sock in latency.sockets if sock.pid == slow.pid]
    assert (
        sockets
        and sockets[0].protocol == 6
        and sockets[0].sport == 6101
        and sockets[0].daddr == pair.sender_ip
    )
