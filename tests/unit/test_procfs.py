"""Parsers of /proc text, on the formats this kernel prints."""

from __future__ import annotations

from netscope.sources.procfs import parse_cpu_list, parse_interrupts, parse_softirqs, parse_softnet_stat

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
