from __future__ import annotations

from netscope.model.irq import map_irq_name, queue_from_suffix

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
