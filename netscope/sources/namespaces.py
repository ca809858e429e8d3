"""The network namespaces of the box as the live source sees them: their names and paths (a /proc
scan, cached), the devices of each with their counters (netlink), which namespaces carry traffic,
and the tunables findings name there (RPS masks, nft drop rules)."""

from __future__ import annotations

import time
from dataclasses import replace

from netscope.model.balance import BALANCE_COUNTERS, IP_EDGES
from netscope.model.findings import NETFILTER_DROP
from netscope.model.sample import (
    DEVICES,
    DeviceStats,
    DropsSample,
    FlowsSample,
    HostInfo,
    IrqLine,
    NetnsSnmp,
    QueueCount,
    SnmpCount,
)
from netscope.probes.base import Alive
from netscope.sources import nft, procfs
from netscope.sources.netlink import BQL_KINDS, LinkReader, LinkTotals, bql, link_deltas
from netscope.sources.netns_sysfs import read_sysfs_in
from netscope.sources.procfs import NetnsRef
from netscope.sources.readings import Every, ReadGaps

NETNS_RECHECK_S = 5.0
# The namespaces are listed this often (a /proc scan); their devices are read every interval, up to
# this many namespaces (those whose devices carry traffic first, the others in turn).
NETNS_SCAN_S = 2.0
DEVICES_NETNS_MAX = 32
# RPS masks are a file per RX queue (hundreds on a host with many veths): read this often.
RPS_EVERY_S = 5.0


class Namespaces:
    def __init__(self, info: HostInfo, gaps: ReadGaps, notes: list[str]) -> None:
        self.info = info
        self._gaps = gaps
        self._notes = notes
        self.links = LinkReader(info.netns)
        self._cache: dict[int, NetnsRef] = {}
        self._checked = 0.0
        self._link_totals: dict[tuple[int, int], LinkTotals] = {}
        self._snmp_totals: dict[int, dict[tuple[str, str], int]] = {}  # per namespace, the balance's
        self.netns_snmp: tuple[NetnsSnmp, ...] = ()  # those counters over the interval `devices` read
        self._snmp_moved: dict[int, int] = {}  # how far IP's edges moved while read, at the start
        self._quiet: set[int] = set()  # namespaces whose devices did not move in the last read
        self._busy: set[int] = set()  # namespaces whose devices carried or dropped traffic
        self._list: Every[float, dict[int, NetnsRef]] = Every(NETNS_SCAN_S, lambda _: procfs.read_netns(None))
        self._turn = 0
        # The namespaces now, and the devices of those read last (for the probes to prune).
        self._alive_devices: tuple[frozenset[int], dict[int, frozenset[int]]] | None = None
        self._nft_rules = Every(nft.NFT_EVERY_S, _read_drop_rules)
        self._rps_masks = Every(RPS_EVERY_S, _read_rps_masks)

    def carried(self, seen: set[int]) -> None:
        """Namespaces where the probes saw drops, queues or flows: their devices are read too."""
        self._busy |= seen

    def refs(self, wanted: set[int]) -> dict[int, NetnsRef]:
        """Names and paths of namespaces; looked up again at most every few seconds while some are
        still unknown (a /proc scan)."""
        wanted = wanted - {0, self.info.netns}
        unknown = wanted - set(self._cache)
        if unknown and time.monotonic() - self._checked > NETNS_RECHECK_S:
            self._checked = time.monotonic()
            self._cache.update(procfs.read_netns(unknown))
        return {n: self._cache[n] for n in wanted if n in self._cache}

    def names(self, wanted: set[int]) -> tuple[tuple[int, str], ...]:
        return tuple(sorted((n, ref.name) for n, ref in self.refs(wanted).items()))

    def devices(self) -> tuple[DeviceStats, ...]:
        """Devices of netscope's namespace and of every namespace whose devices carried traffic. The
        devices of every namespace are read (up to DEVICES_NETNS_MAX a turn, those with traffic
        first), so each has its baseline before its first packet; those without traffic are left
        out of the sample."""
        refs = self._list.get(procfs.named_netns_changed())  # `ip netns add`: at once
        self._cache.update(refs)
        others = [n for n in refs if n != self.info.netns]
        others.sort(key=lambda n: (n not in self._busy, n))
        if len(others) > DEVICES_NETNS_MAX:  # the busy ones, then the others in turn
            busy = [n for n in others if n in self._busy][:DEVICES_NETNS_MAX]
            idle = [n for n in others if n not in self._busy]
            start = self._turn % len(idle) if idle else 0
            others = busy + (idle[start:] + idle[:start])[: DEVICES_NETNS_MAX - len(busy)]
            self._turn = start + DEVICES_NETNS_MAX - len(busy)
        namespaces: dict[int, str | None] = {self.info.netns: None}
        namespaces.update({n: refs[n].path for n in others})
        self.links.forget_except(namespaces)
        at = time.monotonic()
        snmp: dict[int, dict[tuple[str, str], int]] = {}
        edges_before: dict[int, int] = {}  # IP's edges right before the namespace's devices are read
        moved: dict[int, int] = {}  # ... and how far they moved by the read's end
        quiet: set[int] = set()  # namespaces whose devices did not move since the last read

        def read_snmp(inode: int, devices: list[LinkTotals] | None) -> None:
            """The namespace's balance counters after its devices, and IP's two edges (InReceives,
            OutTransmits) before them: how far those moved meanwhile is the read skew. A namespace
            whose devices have not moved since the last read (most of them, on a host of idle
            containers) received and sent nothing: its counters are the last read's, not read
            again (0.4 ms a namespace: the kernel sums every CPU's counters for each file)."""
            last = self._snmp_totals.get(inode)
            if devices is None:
                if last is None or inode not in self._quiet:
                    try:  # no /proc/net there: no balance. Before the devices, IP's edges are enough.
                        counts = procfs.read_snmp_counters(IP_EDGES, procfs.THREAD_NET)
                    except (OSError, ValueError):
                        return
                    edges_before[inode] = sum(counts.get(k, 0) for k in IP_EDGES)
                return
            if (
                last is not None
                and devices
                and all(
                    (before := self._link_totals.get((inode, t.ifindex))) is not None
                    and before.counters == t.counters
                    for t in devices
                )
            ):
                quiet.add(inode)
                snmp[inode] = last
                return
            try:
                counts = procfs.read_snmp_counters(BALANCE_COUNTERS, procfs.THREAD_NET)
            except (OSError, ValueError):
                return
            snmp[inode] = counts
            edges = sum(counts.get(k, 0) for k in IP_EDGES)
            moved[inode] = max(0, edges - edges_before.get(inode, edges))

        self.netns_snmp = ()
        try:
            current = self.links.read(namespaces, read_snmp)
        except Exception as e:  # netlink trouble must not cost the probes' counts
            self._notes.append(f"reading devices over netlink failed: {e}")
            self._gaps.bad(DEVICES)
            return ()
        self._gaps.good(DEVICES, at)
        read: dict[int, set[int]] = {}
        for t in current:  # a namespace read has its loopback at least
            read.setdefault(t.netns, set()).add(t.ifindex)
        # Namespaces gone (their path no longer opens) are forgotten, with their devices; the probes
        # prune their keys too.
        alive = frozenset(read) | frozenset(refs)
        self._alive_devices = (alive, {netns: frozenset(ifindexes) for netns, ifindexes in read.items()})
        current = with_bql(current, namespaces, self.info.netns)
        devices = link_deltas(self._link_totals, current)
        self._link_totals.update({(t.netns, t.ifindex): t for t in current})
        self._busy |= {d.netns for d in devices if d.rx_packets or d.tx_packets or d.rx_dropped}
        self._busy &= alive
        self._link_totals = {k: t for k, t in self._link_totals.items() if k[0] in alive}
        shown = {n for n in read if n in self._busy or n == self.info.netns}
        self.netns_snmp = tuple(
            NetnsSnmp(
                n,
                tuple(SnmpCount(g, c, max(0, v - before.get((g, c), v))) for (g, c), v in now.items()),
                moved.get(n, 0) + self._snmp_moved.get(n, 0),
            )
            for n, now in sorted(snmp.items())
            if n in shown and (before := self._snmp_totals.get(n)) is not None
        )
        self._snmp_totals = {n: v for n, v in {**self._snmp_totals, **snmp}.items() if n in alive}
        self._snmp_moved = moved
        self._quiet = quiet
        return tuple(d for d in devices if d.netns in shown)

    def alive(self, irqs: frozenset[int] | None) -> Alive | None:
        """What exists now, for the probes to prune their keys by; None before devices were read."""
        if self._alive_devices is None:
            return None
        netns, devices = self._alive_devices
        return Alive(netns, devices, irqs)

    def tunables(
        self, drops: DropsSample | None, irq_lines: tuple[IrqLine, ...]
    ) -> tuple[tuple[str, str], ...]:
        """The knobs findings name, now; the drop rules of the nft ruleset while netfilter drops."""
        found = procfs.read_tunables(line.irq for line in irq_lines if line.device)
        found += self._rps_masks.get(frozenset(self.refs(self._busy).values()))
        if drops is not None:
            netfilter = {r.reason for r in drops.reasons if r.name == NETFILTER_DROP}
            if netfilter:
                where = {b.netns for b in drops.buckets if b.reason in netfilter}
                found += self._nft_rules.get(frozenset(self.refs(where).values()))
        return found

    def close(self) -> None:
        self.links.close()


def namespaces_in(
    drops: DropsSample | None, queues: tuple[QueueCount, ...] | None, flows: FlowsSample | None
) -> set[int]:
    """Namespaces the sample's drops, queues and flows happened in."""
    found = {q.netns for q in queues or ()}
    if drops:
        found |= {b.netns for b in drops.buckets} | {e.netns for e in drops.events}
    if flows:
        found |= {f.netns for f in flows.flows}
    return found


def _read_drop_rules(elsewhere: frozenset[NetnsRef]) -> tuple[tuple[str, str], ...]:
    """nft drop rules of netscope's namespace and of the other namespaces where netfilter drops."""
    found = nft.read_drop_rules()
    for ref in sorted(elsewhere, key=lambda r: r.name):
        found += nft.read_drop_rules(ref.name, ref.path)
    return found


def with_bql(links: list[LinkTotals], paths: dict[int, str | None], own_netns: int) -> list[LinkTotals]:
    """`links` with the BQL of the devices of other namespaces that may keep it (a NIC moved into a
    namespace, an ifb): read in sysfs as each namespace sees it (about 3 ms a namespace, so only
    where such a device is)."""
    wanted: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for t in links:
        path = paths.get(t.netns)
        if t.netns != own_netns and t.kind in BQL_KINDS and path is not None:
            wanted.setdefault(str(t.netns), []).append(t.ifname)
            where[str(t.netns)] = path
    if not wanted:
        return links
    found = read_sysfs_in(
        where, lambda sys, netns: {name: bql(name, sys / "class" / "net") for name in wanted[netns]}
    )
    return [
        replace(t, bql=found[str(t.netns)].get(t.ifname, ())) if str(t.netns) in found else t for t in links
    ]


def _read_rps_masks(elsewhere: frozenset[NetnsRef]) -> tuple[tuple[str, str], ...]:
    """RPS masks of netscope's namespace and of the other namespaces whose devices carried or
    dropped traffic (a veth's queues steer in the namespace that holds it)."""
    others = read_sysfs_in({ref.name: ref.path for ref in elsewhere}, procfs.read_rps_masks)
    return procfs.read_rps_masks() + tuple(mask for name in sorted(others) for mask in others[name])


def interfaces_everywhere(own_netns: int) -> dict[str, set[str]]:
    """Device names in every network namespace: name -> the namespaces (names) holding one."""
    refs = procfs.read_netns(None)
    namespaces: dict[int, str | None] = {n: ref.path for n, ref in refs.items() if n != own_netns}
    namespaces[own_netns] = None
    found: dict[str, set[str]] = {}
    for link in LinkReader(own_netns).read(namespaces):
        netns_name = refs[link.netns].name if link.netns in refs and link.netns != own_netns else ""
        found.setdefault(link.ifname, set()).add(netns_name)
    return found
