"""IRQ line names -> the device and queue they serve. Pure: sysfs facts come in as arguments."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

# virtio_net names its vectors virtioN-input.Q / virtioN-output.Q; virtio_blk virtioN-req.Q.
_VIRTIO = re.compile(r"^(virtio\d+)-([a-z_]+?)(?:[.-](\d+))?$")
_VIRTIO_QUEUE = {"input": "rx", "output": "tx", "rx": "rx", "tx": "tx", "req": "req"}
# Common NIC driver suffixes after the interface name: eth0-TxRx-0, ens5-Tx-Rx-1, eth0-rx-2, eno1-3.
_QUEUE_SUFFIX = re.compile(r"^(?:(tx-?rx|combined|rx|tx|comp|fp|queue|q)[-_]?)?(\d+)$", re.IGNORECASE)
_QUEUE_WORD = {"tx-rx": "rxtx", "txrx": "rxtx", "combined": "rxtx", "q": "queue"}


def queue_from_suffix(suffix: str) -> str:
    """'TxRx-0' -> 'rxtx-0', 'rx-3' -> 'rx-3', '3' -> 'queue-3'; '' when it names no queue."""
    m = _QUEUE_SUFFIX.match(suffix)
    if not m:
        return ""
    word = (m.group(1) or "queue").lower()
    return f"{_QUEUE_WORD.get(word, word)}-{m.group(2)}"


def map_irq_name(
    irq: int,
    name: str,
    by_bus: Mapping[str, str],
    by_irq: Mapping[int, str],
    interfaces: Collection[str],
) -> tuple[str, str]:
    """(device, queue) for an IRQ line; ('', '') when nothing ties it to a device.

    `by_bus` maps bus device names (virtio2, 0000:00:03.0) to the net/block device bound to them,
    `by_irq` maps MSI vectors listed in sysfs to their device, `interfaces` are the netdev names.
    """
    m = _VIRTIO.match(name)
    if m:
        bus, role, index = m.groups()
        device = by_bus.get(bus, bus)
        if role == "config":
            return device, "config"
        word = _VIRTIO_QUEUE.get(role, role)
        return device, f"{word}-{index}" if index is not None else word
    # Longest interface name that prefixes the IRQ name, followed by a separator.
    for iface in sorted(interfaces, key=len, reverse=True):
        if name == iface:
            return iface, ""
        if name.startswith(iface) and name[len(iface)] in "-_@:":
            return iface, queue_from_suffix(name[len(iface) + 1 :])
    device = by_irq.get(irq, "")
    if device:
        tail = re.search(r"(\d+)(?:@|$)", name)
        return device, f"queue-{tail.group(1)}" if tail else ""
    return "", ""
