from __future__ import annotations

from netscope.sources.irq import map_irq_name, queue_from_suffix

BY_BUS = {"virtio2": "eth0", "virtio1": "vda", "0000:03:00.0": "ens5"}
BY_IRQ = {120: "ens5", 121: "ens5"}
IFACES = {"lo", "eth0", "ens5", "eth0.100"}


def m(irq: int, name: str) -> tuple[str, str]:
    return map_irq_name(irq, name, BY_BUS, BY_IRQ, IFACES)


def test_virtio_net_and_blk_vectors() -> None:
    assert m(38, "virtio2-input.0") == ("eth0", "rx-0")
    assert m(39, "virtio2-output.0") == ("eth0", "tx-0")
    assert m(37, "virtio2-config") == ("eth0", "config")
    assert m(36, "virtio1-req.0") == ("vda", "req-0")
    assert m(41, "virtio3-rx") == ("virtio3", "rx")  # a virtio device bound to no netdev/block


def test_nic_drivers_named_after_the_interface() -> None:
    assert m(50, "eth0-TxRx-3") == ("eth0", "rxtx-3")
    assert m(51, "eth0-rx-2") == ("eth0", "rx-2")
    assert m(52, "eth0-tx-7") == ("eth0", "tx-7")
    assert m(53, "eth0") == ("eth0", "")
    assert m(54, "eth0.100-1") == ("eth0.100", "queue-1")  # longest interface name wins


def test_msi_vectors_from_sysfs_and_unrelated_lines() -> None:
    assert m(120, "mlx5_comp3@pci:0000:03:00.0") == ("ens5", "queue-3")
    assert m(26, "ttyS0") == ("", "")
    assert m(24, "ACPI:Ged") == ("", "")


def test_queue_suffixes() -> None:
    assert queue_from_suffix("Tx-Rx-1") == "rxtx-1"
    assert queue_from_suffix("combined-0") == "rxtx-0"
    assert queue_from_suffix("5") == "queue-5"
    assert queue_from_suffix("fastpath") == ""


def test_a_shared_line_counts_each_interrupt_once() -> None:
    """Handler entries recorded on a line two devices share (every interrupt runs both handlers)
    and on a line of its own: /proc/interrupts counts 100 and 40 interrupts, not 200; the line's
    time is both handlers'. A handler freed meanwhile (its count frozen) does not hide the others'."""
    from netscope.probes.hardirq import HardirqProbe

    probe = HardirqProbe(cpus=(0, 1))
    before = {
        (11, 0xA0): ((500, 0), (9_000, 0)),
        (11, 0xB0): ((500, 0), (4_000, 0)),
        (12, 0xC0): ((7, 3), (70, 30)),
        (13, 0xD0): ((900, 0), (100, 0)),  # freed: no more runs
        (13, 0xE0): ((10, 0), (1, 0)),
    }
    after = {
        (11, 0xA0): ((600, 0), (10_000, 0)),
        (11, 0xB0): ((600, 0), (4_500, 0)),
        (12, 0xC0): ((7, 43), (70, 430)),
        (13, 0xD0): ((900, 0), (100, 0)),
        (13, 0xE0): ((15, 0), (2, 0)),
    }
    counts = {c.irq: (c.per_cpu, c.time_ns) for c in probe.delta(before, after)}
    assert counts == {11: ((100, 0), (1_500, 0)), 12: ((0, 40), (0, 400)), 13: ((5, 0), (1, 0))}
