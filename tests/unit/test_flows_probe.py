"""The flows probe's decoding of one interval's tables (raw struct bytes as BPF_MAP_LOOKUP_BATCH
returns them): the busiest N in full, the rest summed so that rows plus rest are the tables'
totals, drops matched to their flows, and the watched flow listed whatever its rank."""

from __future__ import annotations

import ipaddress

from netscope.model.drops import ReasonNames
from netscope.probes.flows import (
    COUNT,
    DROP_KEY,
    FLOW_KEY,
    FLOW_STAT,
    FLOW_STATS,
    UNHELD_DROPS,
    UNHELD_PACKETS,
    FlowsProbe,
    Interval,
)

NETNS, IFINDEX = 4026532000, 7
NO_SOCKET, NETFILTER = 2, 9
NAMES = ReasonNames({NO_SOCKET: "NO_SOCKET", NETFILTER: "NETFILTER_DROP"}, {}, {})


def key(sport: int, netns: int = NETNS, ifindex: int = IFINDEX) -> bytes:
    src, dst = ipaddress.ip_address("10.200.0.1").packed, ipaddress.ip_address("10.200.0.2").packed
    return FLOW_KEY.pack(src.ljust(16, b"\0"), dst.ljust(16, b"\0"), sport, 9, 4, 17, netns, ifindex)


def interval(
    flows: dict[int, int], drops: dict[tuple[bytes, int], int], unheld: int = 0, unheld_drops: int = 0
) -> Interval:
    """`flows`: source port -> packets (64 bytes each), received on CPU 1; `drops`: (key, reason) -> n."""
    stats = b"".join(FLOW_STAT.pack(n, 64 * n, 1 << 63, 1 << 1, 0, 1, 2) for n in flows.values())
    counters = [0] * len(FLOW_STATS)
    counters[UNHELD_PACKETS], counters[UNHELD_DROPS] = unheld, unheld_drops
    return Interval(
        keys=b"".join(key(port) for port in flows),
        stats=stats,
        drop_keys=b"".join(DROP_KEY.pack(k, reason) for k, reason in drops),
        drop_counts=b"".join(COUNT.pack(n) for n in drops.values()),
        counters=tuple(counters),
        events=(),
    )


def probe(top: int | None) -> FlowsProbe:
    p = FlowsProbe((0, 1), top=top)
    p.names = NAMES
    return p


BASELINE = interval({}, {})


def test_the_busiest_in_full_and_the_rest_summed() -> None:
    flows = {40000 + i: 10 * (i + 1) for i in range(50)}  # port 40049 the busiest
    # Port 40000 drops the most (without a device: a drop matched by its 5-tuple and namespace).
    drops = {(key(40000, ifindex=0), NO_SOCKET): 5000, (key(40001), NO_SOCKET): 3, (key(40001), NETFILTER): 4}
    drops[(key(50000), NO_SOCKET)] = 2  # a flow that only dropped
    sample = probe(top=5).delta(BASELINE, interval(flows, drops, unheld=70))
    ports = [f.sport for f in sample.flows]
    assert ports[0] == 40000 and set(ports[1:]) == {40049, 40048, 40047, 40046}
    first = sample.flows[0]
    assert (first.rx_packets, first.drops, first.ifindex) == (10, (("NO_SOCKET", 5000),), IFINDEX)
    assert first.cpus == (1,) and first.queues == (-1,)
    shown = sum(f.rx_packets for f in sample.flows)
    assert sample.rest.rx_packets + shown == sum(flows.values()) + 70  # what a full table missed
    assert sample.rest.rx_bytes + sum(f.rx_bytes for f in sample.flows) == 64 * sum(flows.values())
    assert dict(sample.rest.drops) == {"NO_SOCKET": 3 + 2, "NETFILTER_DROP": 4}
    assert sample.rest.flows + len(sample.flows) == 51  # 50 received, one only dropped
    assert sample.not_held == 70


def test_every_flow_when_they_fit_and_the_watched_whatever_its_rank() -> None:
    flows = {40000 + i: 100 + i for i in range(20)}
    drops = {(key(40003), NO_SOCKET): 1, (key(40003), NETFILTER): 2}
    every = probe(top=None).delta(BASELINE, interval(flows, drops))
    assert len(every.flows) == 20 and every.rest.flows == 0 and every.rest.rx_packets == 0
    dropping = next(f for f in every.flows if f.sport == 40003)
    assert dict(dropping.drops) == {"NO_SOCKET": 1, "NETFILTER_DROP": 2}
    watching = probe(top=3)
    watching.watch((0, 17, "10.200.0.1", 40000, "10.200.0.2", 9))  # the least busy, any namespace
    sample = watching.delta(BASELINE, interval(flows, drops))
    assert {f.sport for f in sample.flows} == {40019, 40018, 40017, 40000}
    assert sample.rest.flows == 16 and sample.rest.rx_packets == sum(flows.values()) - sum(
        f.rx_packets for f in sample.flows
    )
