"""Rings probe (bpf_src/rings.bpf.c): packets and bytes per device queue, RX and TX, in every
network namespace."""

from __future__ import annotations

from typing import Any

from netscope.model.sample import QueueCount
from netscope.probes import cdefs
from netscope.probes.base import Alive, Probe, drop_keys, map_max
from netscope.probes.btf import kernel_btf
from netscope.probes.offsets import kernel_offsets

QUEUES_MAX = 16384
QUEUE_UNKNOWN = cdefs.define("QUEUE_UNKNOWN")

Key = tuple[int, int, int, bool]  # netns, ifindex, queue, tx
Totals = dict[Key, tuple[str, int, int]]  # name, packets, bytes (all CPUs)


class RingsProbe(Probe[tuple[QueueCount, ...]]):
    name = "rings"
    sample_field = "queues"
    filtered = True
    source_file = "rings.bpf.c"
    tracepoints = (("net", "netif_receive_skb"), ("net", "net_dev_start_xmit"))
    per_packet = ("netif_receive_skb", "net_dev_start_xmit")
    sampled = True
    full_map = "rings_full"

    def defines(self) -> dict[str, int | str]:
        return {**kernel_offsets(kernel_btf()), "NS_QUEUES_MAX": map_max(QUEUES_MAX)}

    def prune_keys(self, bpf: Any, totals: Totals, alive: Alive) -> None:
        table = bpf[b"queue_stats"]

        def key_of(k: Key) -> Any:
            netns, ifindex, queue, tx = k
            return table.Key(netns=netns, ifindex=ifindex, queue=QUEUE_UNKNOWN if queue < 0 else queue, tx=tx)

        drop_keys(table, totals, lambda k: alive.device_gone(k[0], k[1]), key_of)

    def read_totals(self, bpf: Any) -> Totals:
        totals = {}
        for k, values in bpf[b"queue_stats"].items():
            queue = -1 if k.queue == QUEUE_UNKNOWN else int(k.queue)
            name = next((v.ifname.decode(errors="replace") for v in values if v.ifname), "")
            totals[(int(k.netns), int(k.ifindex), queue, bool(k.tx))] = (
                name,
                sum(int(v.packets) for v in values),
                sum(int(v.bytes) for v in values),
            )
        return totals

    def delta(self, previous: Totals, current: Totals) -> tuple[QueueCount, ...]:
        out = []
        for key, (name, packets, nbytes) in sorted(current.items()):
            _, prev_packets, prev_bytes = previous.get(key, (name, 0, 0))
            if packets != prev_packets:
                netns, ifindex, queue, tx = key
                out.append(
                    QueueCount(netns, ifindex, name, queue, tx, packets - prev_packets, nbytes - prev_bytes)
                )
        return tuple(out)
