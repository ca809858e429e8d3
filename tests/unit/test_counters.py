"""Running totals for the Prometheus export: sums of the samples, histogram bounds that never put
a count below its true value."""

from __future__ import annotations

from pathlib import Path

from netscope.model.counters import LATENCY_BOUNDS_S, RunningTotals, add_to_bounds, cumulative
from netscope.model.latency import PROC_BITS, bucket_of
from netscope.sources.recording import read_recording

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "veth-traffic.nsrec"


def test_totals_are_the_sums_of_the_samples() -> None:
    rec = read_recording(FIXTURE)
    totals = RunningTotals(rec.info)
    for sample in rec.samples:
        totals.add(sample)
    assert totals.samples == len(rec.samples)
    no_socket = sum(
        sum(r.per_cpu) for s in rec.samples if s.drops for r in s.drops.reasons if r.name == "NO_SOCKET"
    )
    assert no_socket > 0 and totals.drops["NO_SOCKET"] == no_socket
    # Softirq runs are the kernel's own count (/proc/softirqs), whatever was attached.
    net_rx = sum(c.runs[s.softirq_names.index("NET_RX")] for s in rec.samples for c in s.proc_softirqs)
    assert sum(n for (_, vec), n in totals.softirq_runs.items() if vec == "NET_RX") == net_rx
    reads = sum(p.count for s in rec.samples if s.latency for p in s.latency.processes)
    assert reads > 0 and cumulative(totals.copy_latency)[-1] == ("+Inf", float(reads))
    # The way out: every qdisc's counts (the shaped veth's tbf drops), TCP per namespace.
    tbf = [(d.ifname, q.drops) for s in rec.samples for d in s.devices for q in d.qdiscs if q.kind == "tbf"]
    dropped = sum(n for _, n in tbf)
    assert (
        dropped > 0
        and sum(n for k, n in totals.qdiscs.items() if k[2] == "tbf" and k[4] == "drops") == dropped
    )
    retransmits = sum(c.retransmits for s in rec.samples if s.tcp for c in s.tcp.conns)
    assert (
        retransmits > 0
        and sum(n for (_, what), n in totals.tcp.items() if what == "retransmits") == retransmits
    )


def test_export_serves_the_way_out_and_tcp() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from netscope.prometheus import NetscopeCollector

    rec = read_recording(FIXTURE)
    collector = NetscopeCollector(rec.info)
    for sample in rec.samples:
        collector.add(sample)
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    for metric in ("netscope_qdisc_drops_total{", "netscope_qdisc_qlen{", "netscope_tcp_retransmits_total{"):
        assert metric in text, metric
    assert 'kind="tbf"' in text and "netscope_bql_limit_bytes{" in text


def test_a_bucket_is_counted_at_the_first_bound_above_its_upper_end() -> None:
    counts = [0] * (len(LATENCY_BOUNDS_S) + 1)
    add_to_bounds(counts, [(bucket_of(900, PROC_BITS), 1)])  # [896, 928) ns: within 1 µs
    add_to_bounds(counts, [(bucket_of(999, PROC_BITS), 2)])  # [992, 1024) straddles 1 µs: above it
    add_to_bounds(counts, [(bucket_of(50_000_000_000, PROC_BITS), 3)])  # 50 s: above every bound
    assert counts[0] == 1 and counts[1] == 2 and counts[-1] == 3
    buckets = cumulative(counts)
    assert buckets[0] == ("1e-06", 1.0) and buckets[1] == ("1e-05", 3.0) and buckets[-1] == ("+Inf", 6.0)
