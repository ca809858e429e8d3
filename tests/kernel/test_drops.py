"""Drop counts against the kernel's own counters, in the receiving namespace, over the same window.

NO_SOCKET vs Udp NoPorts, SOCKET_RCVBUFF vs Udp RcvbufErrors, NETFILTER_DROP vs the nft rule's
counter. Counted in that namespace only (drops are keyed by network namespace), so unrelated drops
on the host cannot make a test pass or fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from harness.netns import (
    VethPair,
    flood_result,
    flood_udp,
    idle_receiver,
    netns_inode,
    nft_drop,
    send_udp,
    snmp,
)
from netscope.model.filter import parse_filter
from netscope.model.sample import DropsSample, ProbeState
from netscope.probes.base import start_probes
from netscope.probes.drops import DropsProbe
from netscope.probes.headers import find_headers
from netscope.sources import procfs
from tests.kernel import truth

SUBNET = 78
PACKETS = 3000


@pytest.fixture(scope="module")
def probe() -> Iterator[DropsProbe]:
    p = DropsProbe(procfs.read_online_cpus())
    try:
        start_probes((p,), find_headers())
        assert p.status.state == ProbeState.LIVE, p.status.error
        yield p
    finally:
        p.close()


def window(
    probe: DropsProbe, counter: Callable[[], int], traffic: Callable[[], None]
) -> tuple[DropsSample, int]:
    """Drops netscope saw and the kernel counter's delta, over one window around `traffic`."""
    probe.poll()
    before = counter()
    traffic()
    after = truth.settled(counter)  # the receiving softirqs are done
    sample = probe.poll()
    assert sample is not None
    return sample, after - before


def counted(sample: DropsSample, reason: str, netns: int) -> int:
    codes = {r.reason for r in sample.reasons if r.name == reason}
    assert sample.unbucketed == 0
    return sum(sum(b.per_cpu) for b in sample.buckets if b.reason in codes and b.netns == netns)


def symbols(sample: DropsSample, reason: str, netns: int) -> set[str]:
    codes = {r.reason for r in sample.reasons if r.name == reason}
    return {b.symbol.split("+")[0] for b in sample.buckets if b.reason in codes and b.netns == netns}


def test_no_socket_equals_udp_noports(probe: DropsProbe, pair: VethPair) -> None:
    sample, kernel = window(
        probe, lambda: snmp(pair.receiver_ns)["NoPorts"], lambda: send_udp(pair, PACKETS, 9)
    )
    assert kernel == PACKETS
    assert counted(sample, "NO_SOCKET", netns_inode(pair.receiver_ns)) == kernel
    # The exact per-reason count covers at least these (other namespaces may add their own).
    assert sum(sum(r.per_cpu) for r in sample.reasons if r.name == "NO_SOCKET") >= kernel
    assert any("udp" in s for s in symbols(sample, "NO_SOCKET", netns_inode(pair.receiver_ns)))
    tuples = [e for e in sample.events if e.name == "NO_SOCKET" and e.daddr == pair.receiver_ip]
    assert tuples and tuples[0].dport == 9 and tuples[0].saddr == pair.sender_ip and tuples[0].l4proto == 17


def test_socket_rcvbuff_equals_udp_rcvbuferrors(probe: DropsProbe, pair: VethPair) -> None:
    with idle_receiver(pair, 5555):
        sample, kernel = window(
            probe, lambda: snmp(pair.receiver_ns)["RcvbufErrors"], lambda: send_udp(pair, PACKETS, 5555)
        )
    assert kernel > PACKETS * 0.9  # a 1 KiB buffer holds a handful of datagrams
    assert counted(sample, "SOCKET_RCVBUFF", netns_inode(pair.receiver_ns)) == kernel
    assert any("udp" in s for s in symbols(sample, "SOCKET_RCVBUFF", netns_inode(pair.receiver_ns)))


def test_netfilter_drop_equals_the_rule_counter(probe: DropsProbe, pair: VethPair) -> None:
    with nft_drop(pair, 7777) as rule_packets:
        sample, kernel = window(probe, rule_packets, lambda: send_udp(pair, PACKETS, 7777))
    assert kernel == PACKETS
    assert counted(sample, "NETFILTER_DROP", netns_inode(pair.receiver_ns)) == kernel
    # e.g. nft_do_chain or nf_hook_slow: netfilter's own code, resolved through /proc/kallsyms
    assert any(
        s.startswith(("nf_", "nft_"))
        for s in symbols(sample, "NETFILTER_DROP", netns_inode(pair.receiver_ns))
    )


def test_the_breakdown_loses_nothing_while_it_is_read_and_emptied(pair: VethPair) -> None:
    """A flood of drops while the breakdown (a table of one key here, so that it is emptied at
    every read; the filter keeps other drops out of it) is read every 50 ms: its buckets add up to
    NoPorts exactly. Emptying after reading lost the drops counted in between."""
    flt = parse_filter(f"udp and dst port 9 and src host {pair.sender_ip}")
    probe = DropsProbe(procfs.read_online_cpus(), flt=flt, details_max=1)
    try:
        start_probes((probe,), find_headers())
        assert probe.status.state == ProbeState.LIVE, probe.status.error
        netns = netns_inode(pair.receiver_ns)
        probe.poll()
        before = snmp(pair.receiver_ns)["NoPorts"]
        sender = flood_udp(pair, 3.0, port=9)
        total = unbucketed = reads = 0
        while sender.poll() is None or reads < 3:
            time.sleep(0.05)
            sample = probe.poll()
            assert sample is not None
            unbucketed += sample.unbucketed
            codes = {r.reason for r in sample.reasons if r.name == "NO_SOCKET"}
            total += sum(sum(b.per_cpu) for b in sample.buckets if b.reason in codes and b.netns == netns)
            reads += 1 if sender.returncode is not None else 0
        sent, _ = flood_result(sender)
        kernel = snmp(pair.receiver_ns)["NoPorts"] - before
    finally:
        probe.close()
    assert kernel == sent > 100_000 and unbucketed == 0
    assert total == kernel, (total, kernel)
