"""A namespace whose devices did not move since the last read received nothing: its counters for
the balance are not read again (two /proc reads of three files a namespace, every interval, on a
host of idle containers), and its balance counts nothing; it is read again once its devices move."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netscope.model.sample import HostInfo
from netscope.sources import procfs
from netscope.sources.namespaces import Namespaces
from netscope.sources.netlink import STATS, LinkTotals
from netscope.sources.procfs import NetnsRef
from netscope.sources.readings import ReadGaps

OWN, IDLE = 4026531840, 4026532999
INFO = HostInfo("box", "6.18.44", (0, 1), 0.0, netns=OWN)


def lo(netns: int, rx: int) -> LinkTotals:
    counters = dict.fromkeys(STATS, 0) | {"rx_packets": rx, "tx_packets": rx, "qdisc_drops": 0}
    return LinkTotals(netns, 1, "lo", "", (None, None, None, None), counters, (), kind="loopback")


class FakeLinks:
    """Netlink as LinkReader presents it: each namespace's loopback, whose count the test sets."""

    def __init__(self) -> None:
        self.rx = {OWN: 0, IDLE: 0}

    def read(
        self, namespaces: dict[int, str | None], around: Callable[[int, list[LinkTotals] | None], None]
    ) -> list[LinkTotals]:
        out = []
        for inode in namespaces:
            around(inode, None)
            here = [lo(inode, self.rx[inode])]
            around(inode, here)
            out += here
        return out

    def forget_except(self, _namespaces: object) -> None:
        pass


def test_a_quiet_namespace_is_not_read_again_until_its_devices_move(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, ...]] = []
    ip_in = {"n": 100}

    def read_snmp_counters(keys: object, _net: object) -> dict[tuple[str, str], int]:
        groups = tuple(sorted({g for g, _ in keys}))  # type: ignore[attr-defined]
        reads.append(groups)
        return {("Ip", "InReceives"): ip_in["n"], ("Ip", "InDelivers"): ip_in["n"]}

    monkeypatch.setattr(procfs, "read_snmp_counters", read_snmp_counters)
    monkeypatch.setattr(procfs, "read_netns", lambda _: {IDLE: NetnsRef("idle", "/run/netns/idle")})
    monkeypatch.setattr(procfs, "named_netns_changed", lambda: 0.0)
    ns = Namespaces(INFO, ReadGaps(), [])
    links = FakeLinks()
    monkeypatch.setattr(ns, "links", links)

    def interval() -> int:
        reads.clear()
        ns.devices()
        return len(reads)

    assert interval() == 4  # first: both namespaces, before and after their devices
    links.rx[IDLE] = 10  # the idle one receives: read, and busy from now on
    ip_in["n"] = 110
    # The own namespace: read before its devices (it had no quiet read yet), not after (they did
    # not move); the other, before and after.
    assert interval() == 3
    assert [s.netns for s in ns.netns_snmp] == [OWN, IDLE]
    assert received(ns, IDLE) == 10 and received(ns, OWN) == 0
    assert interval() == 1  # the other read before (it moved last time), not after: quiet now
    assert received(ns, IDLE) == 0
    assert interval() == 0  # both quiet in the last read: nothing read
    links.rx[IDLE] = 20
    ip_in["n"] = 120
    assert interval() == 1  # it moved: read after its devices (not before: it was quiet)
    assert received(ns, IDLE) == 10 and received(ns, OWN) == 0


def received(ns: Namespaces, netns: int) -> int:
    """Ip InReceives over the interval, in `netns`'s balance counters."""
    counts = next(s for s in ns.netns_snmp if s.netns == netns).counts
    return {(c.group, c.name): c.count for c in counts}[("Ip", "InReceives")]
