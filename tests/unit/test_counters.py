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


def test_a_device_gone_for_a_minute_ends_its_series_and_its_namespaces() -> None:
    """Container veths come and go: a device unread for DEVICE_GONE_S loses its series (and a
    namespace with no device left its TCP and balance series); one still read keeps its own."""
    import dataclasses

    from netscope.model.counters import DEVICE_GONE_S

    rec = read_recording(FIXTURE)
    totals = RunningTotals(rec.info)
    first = rec.samples[0]
    totals.add(first)
    names = dict(first.netns_names)
    others = {d.netns for d in first.devices if d.netns not in (0, rec.info.netns)}
    assert others, "the fixture has devices in the test's namespaces"
    kept = [d for d in first.devices if d.netns not in others]
    labels = {names.get(n, str(n)) for n in others}
    assert any(k[1] in labels for k in totals.devices) and any(k[0] in labels for k in totals.balance)
    for step in (DEVICE_GONE_S / 2, DEVICE_GONE_S + 1):
        totals.add(dataclasses.replace(first, ts=first.ts + step, devices=tuple(kept)))
    for table in (totals.devices, totals.queues, totals.qdiscs, totals.qdisc_queued, totals.bql):
        assert not [k for k in table if k[1] in labels], table
    assert not [k for k in totals.tcp if k[0] in labels]
    assert not [k for k in totals.balance if k[0] in labels]
    assert {k[:2] for k in totals.devices} == {(d.ifname, "") for d in kept}


def test_the_exporter_serves_the_rendered_text_and_says_how_it_goes() -> None:
    """/metrics is the text rendered at the newest interval; /-/ready once one is counted;
    /-/healthy until the loop stops counting; the own-cost gauges and the knobs in force."""
    from prometheus_client.parser import text_string_to_metric_families

    from netscope.prometheus import Exporter

    rec = read_recording(FIXTURE)
    exporter = Exporter(rec.info, 1.0)

    def get(path: str) -> tuple[str, bytes]:
        got: list[str] = []
        body = b"".join(exporter.app({"PATH_INFO": path}, lambda status, _headers: got.append(status)))
        return got[0], body

    assert get("/-/ready")[0].startswith("503")
    status, body = get("/metrics")  # served from the start: netscope's own process, no interval yet
    assert status.startswith("200") and b"netscope_intervals_total 0.0" in body
    assert get("/-/healthy")[0].startswith("200")  # starting up is not a failure
    for sample in rec.samples:
        exporter.add(sample)
    status, body = get("/metrics")
    assert status.startswith("200") and get("/-/ready")[0].startswith("200")
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert values[("netscope_intervals_total", ())] == len(rec.samples)
    assert values[("netscope_last_interval_timestamp_seconds", ())] == rec.samples[-1].ts
    assert values[("netscope_bpf_budget_ratio", ())] == 0.03
    tunables = dict(rec.samples[-1].tunables)
    backlog = ("netscope_sysctl", (("name", "net.core.netdev_max_backlog"),))
    assert values[backlog] == float(tunables["net.core.netdev_max_backlog"])
    assert ("netscope_process_cpu_seconds_total", ()) in values  # netscope's own CPU
    assert all(("netscope_probe_sample_rate", (("probe", p.name),)) in values for p in rec.samples[-1].probes)
    assert get("/nope")[0].startswith("404")
    exporter._last_counted -= 11
    status, body = get("/-/healthy")
    assert status.startswith("503") and b"newest 11" in body
