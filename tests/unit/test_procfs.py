"""Parsers of /proc text, on the formats this kernel prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from netscope.model.drops import snmp_rows
from netscope.model.sample import Sample, SnmpCount
from netscope.sources.procfs import (
    container_cgroups,
    parse_cpu_list,
    parse_interrupts,
    parse_snmp,
    parse_snmp6,
    parse_softirqs,
    parse_softnet_stat,
    parse_stat_interrupt_ticks,
    read_snmp_counters,
)

INTERRUPTS = """\
           CPU0       CPU1       
 24:          1          0  IO-APIC   5-edge      ACPI:Ged
 36:          0      41999 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 38:          0       1180 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0
 40:          0          0 PCI-MSIX-0000:00:04.0   0-edge
NMI:          0          0   Non-maskable interrupts
LOC:       8809      12567   Local timer interrupts
ERR:          0
"""

SOFTIRQS = """\
                    CPU0       CPU1       
          HI:          0          0
       TIMER:       2567       3475
      NET_TX:          3          1
      NET_RX:        925       1158
"""

SOFTNET = """\
0000000c 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
0000070d 00000002 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000
"""


def test_interrupts_numbered_lines_only_with_names() -> None:
    cpus, lines = parse_interrupts(INTERRUPTS)
    assert cpus == (0, 1)
    assert [(line.irq, line.per_cpu, line.name) for line in lines] == [
        (24, (1, 0), "ACPI:Ged"),
        (36, (0, 41999), "virtio1-req.0"),
        (38, (0, 1180), "virtio2-input.0"),
        (40, (0, 0), ""),
    ]


def test_softirqs_in_vector_order() -> None:
    cpus, rows = parse_softirqs(SOFTIRQS)
    assert cpus == (0, 1)
    assert list(rows) == ["HI", "TIMER", "NET_TX", "NET_RX"]
    assert rows["NET_RX"] == (925, 1158)


def test_softnet_uses_the_cpu_column() -> None:
    rows = parse_softnet_stat(SOFTNET)
    assert [(r.cpu, r.processed, r.dropped, r.time_squeeze) for r in rows] == [
        (0, 12, 0, 0),
        (3, 0x70D, 2, 16),
    ]


def test_cpu_list() -> None:
    assert parse_cpu_list("0-3,6\n") == (0, 1, 2, 3, 6)
    assert parse_cpu_list("0") == (0,)


SNMP = """Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards
Ip: 1 64 5210 0 3 0 0 7
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 120 4242 17 80 17 0 0 0 0
"""
SNMP6 = """Ip6InReceives                   	12
Ip6InDiscards                   	2
Icmp6InMsgs                     	4
Udp6NoPorts                     	9
UdpLite6NoPorts                 	5
"""


def test_snmp_pairs_names_with_values_by_group() -> None:
    counters = parse_snmp(SNMP)
    assert counters[("Udp", "NoPorts")] == 4242
    assert counters[("Udp", "RcvbufErrors")] == 17
    assert counters[("Ip", "InDiscards")] == 7
    assert counters[("Ip", "InAddrErrors")] == 3


def test_snmp_rejects_a_values_line_of_another_group() -> None:
    with pytest.raises(ValueError):
        parse_snmp("Ip: Forwarding\nUdp: 1\n")


def test_snmp6_splits_the_group_from_the_name() -> None:
    counters = parse_snmp6(SNMP6)
    assert counters[("Udp6", "NoPorts")] == 9
    assert counters[("UdpLite6", "NoPorts")] == 5  # not taken for Udp6
    assert counters[("Ip6", "InDiscards")] == 2


def test_snmp_counters_read_only_the_files_that_hold_them(tmp_path: Path) -> None:
    """The balance reads a namespace's IP in counters twice an interval: not netstat then, the
    longest of the three files (here a broken one, which would raise if it were read)."""
    (tmp_path / "snmp").write_text(SNMP)
    (tmp_path / "snmp6").write_text(SNMP6)
    (tmp_path / "netstat").write_text("TcpExt: SyncookiesSent\nIpExt: 1\n")
    keys = (("Ip", "InDiscards"), ("Ip6", "InDiscards"))
    assert read_snmp_counters(keys, tmp_path) == {("Ip", "InDiscards"): 7, ("Ip6", "InDiscards"): 2}
    with pytest.raises(ValueError):
        read_snmp_counters((("IpExt", "InNoRoutes"),), tmp_path)


def test_snmp_rows_counted_since_start_fastest_first() -> None:
    latest = Sample(
        ts=0.0,
        interval_s=2.0,
        softirq_names=(),
        irq_lines=(),
        softnet=(),
        probes=(),
        snmp=(SnmpCount("Udp", "NoPorts", 10), SnmpCount("Udp", "RcvbufErrors", 0)),
    )
    totals = {("Udp", "NoPorts"): 30, ("Udp", "RcvbufErrors"): 500, ("Ip", "InDiscards"): 0}
    rows = snmp_rows(totals, latest)
    assert [(r.counter, r.per_s, r.total) for r in rows] == [
        ("Udp NoPorts", 5.0, 30),
        ("Udp RcvbufErrors", 0.0, 500),
    ]


def test_stat_interrupt_ticks_per_cpu() -> None:
    text = (
        "cpu  100 0 50 9000 3 7 40 0 0 0\n"
        "cpu0 60 0 30 4500 1 5 25 0 0 0\n"
        "cpu1 40 0 20 4500 2 2 15 0 0 0\n"
        "intr 12345\n"
    )
    assert parse_stat_interrupt_ticks(text) == {0: (5, 25), 1: (2, 15)}  # (irq, softirq); not the total


def test_the_containers_cgroups_by_their_directories_inodes(tmp_path: Path) -> None:
    """What the kernel scope's map holds for `container ID`: every directory of a container (and
    below it), by inode, the id bpf_get_current_cgroup_id gives; other directories left out."""
    container = tmp_path / "system.slice" / f"docker-{'ab' * 32}.scope"
    (container / "init").mkdir(parents=True)
    (tmp_path / "system.slice" / "ssh.service").mkdir()
    found = container_cgroups(tmp_path)
    assert set(found) == {container.stat().st_ino, (container / "init").stat().st_ino}
    assert {c.label for c in found.values()} == {"docker:abababababab"}
