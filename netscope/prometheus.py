"""`netscope export`: the live source's running totals as Prometheus metrics, through a custom
prometheus_client collector. Counters count since netscope started; labels stay bounded (no
per-flow labels; devices, namespaces and containers end their series when they are gone).

The metrics text is rendered once per interval, by the sampling loop, right after the totals took
the interval in: a scrape only hands over those bytes, so it answers at once however busy the box
is and never waits on the loop (README "Many machines")."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector, CollectorRegistry

from netscope.model.counters import DEVICE_LOSSES, TCP_EVENTS, RunningTotals, cumulative
from netscope.model.sample import QDISC_COUNTERS, HostInfo, Sample
from netscope.model.sampling import BUDGET_PCT

# The kernel's own names of the device's loss counters (struct rtnl_link_stats64).
DEVICE_METRICS = {"rx_missed": "rx_missed_errors", "rx_over": "rx_over_errors", "rx_fifo": "rx_fifo_errors"}
# /-/healthy fails once no interval has been counted for this many intervals (the loop is stuck).
STALLED_INTERVALS = 10
STARTUP_S = 120.0  # ... or, before the first, for this long (compiling every probe takes ~10 s)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class NetscopeCollector(Collector):
    """The running totals as metric families; fed and read by the sampling loop only."""

    def __init__(self, info: HostInfo) -> None:
        self._totals = RunningTotals(info)

    def add(self, sample: Sample) -> None:
        self._totals.add(sample)

    def collect(self) -> Iterator[Metric]:
        t = self._totals
        yield from _counters(t)
        copy = HistogramMetricFamily(
            "netscope_copy_latency_seconds",
            "Wait of received data on its socket before a process copied it (sock:sk_data_ready to "
            "sock:sock_recv_length); no _sum: the kernel keeps buckets, not sums",
            buckets=cumulative(t.copy_latency),
        )
        stack = HistogramMetricFamily(
            "netscope_stack_latency_seconds",
            "Time from net:netif_receive_skb to the socket queue, per arrival",
            buckets=cumulative(t.stack_latency),
        )
        up = GaugeMetricFamily(
            "netscope_probe_up", "1 when the probe's BPF program is attached", labels=["probe"]
        )
        for name, live in sorted(t.probes_live.items()):
            up.add_metric([name], 1.0 if live else 0.0)
        failed = GaugeMetricFamily(
            "netscope_probe_failed",
            "1 when the probe was asked for and could not attach (0 when it is live or not needed)",
            labels=["probe"],
        )
        for name, down in sorted(t.probes_failed.items()):
            failed.add_metric([name], 1.0 if down else 0.0)
        yield from (copy, stack, up, failed, *_gauges(t), *_containers(t))


class Exporter:
    """The metrics of one export: `add` takes each interval's sample and renders the text that
    /metrics serves until the next one; /-/healthy and /-/ready tell a supervisor how it goes."""

    def __init__(self, info: HostInfo, interval_s: float) -> None:
        self._collector = NetscopeCollector(info)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)
        ProcessCollector(namespace="netscope", registry=self._registry)  # its own CPU, memory, fds
        self._interval_s = interval_s
        self._started = time.monotonic()
        self._counted = 0
        self._last_counted = self._started
        self._text = generate_latest(self._registry)  # empty totals until the first interval

    def add(self, sample: Sample) -> None:
        self._collector.add(sample)
        self._text = generate_latest(self._registry)  # one object swapped whole: a scrape sees either
        self._counted += 1
        self._last_counted = time.monotonic()

    def health(self) -> tuple[bool, str]:
        since = time.monotonic() - self._last_counted
        if not self._counted:
            return since < STARTUP_S, f"starting: no interval counted yet ({since:.0f} s)"
        stalled = since > STALLED_INTERVALS * self._interval_s + 1
        return not stalled, f"{self._counted} intervals counted, the newest {since:.1f} s ago"

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """/metrics, /-/healthy (the sampling loop keeps counting), /-/ready (it has counted)."""
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return _answer(start_response, "200 OK", self._text, CONTENT_TYPE_LATEST)
        if path == "/-/healthy":
            ok, why = self.health()
            return _answer(start_response, "200 OK" if ok else "503 Service Unavailable", f"{why}\n".encode())
        if path == "/-/ready":
            if self._counted:
                return _answer(start_response, "200 OK", b"ready\n")
            return _answer(start_response, "503 Service Unavailable", b"not ready: no interval counted yet\n")
        if path == "/":
            index = b"netscope export: /metrics, /-/healthy, /-/ready\n"
            return _answer(start_response, "200 OK", index)
        return _answer(start_response, "404 Not Found", b"not found: /metrics, /-/healthy, /-/ready\n")


def _answer(
    start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape a second is not news: nothing on stderr."""


def serve(exporter: Exporter, host: str, port: int) -> WSGIServer:
    """Listen now (a port in use raises OSError before anything is compiled) and serve from a
    daemon thread; IPv6 when `host` is an IPv6 address."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("Server", (ThreadingWSGIServer,), {"address_family": family})
    server: WSGIServer = make_server(host, port, exporter.app, server_class, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


def _gauges(t: RunningTotals) -> Iterator[Metric]:
    """netscope's own state and the knobs in force, as of the newest interval."""
    intervals = CounterMetricFamily("netscope_intervals", "Intervals counted since netscope started")
    intervals.add_metric([], t.samples)
    yield intervals
    device = ["device", "netns"]
    for name, doc, labels, values in (
        (
            "netscope_last_interval_timestamp_seconds",
            "When the newest interval counted ended",
            [],
            {(): t.last_ts},
        ),
        (
            "netscope_probe_sample_rate",
            "1 in N of the probe's per-packet runs does the whole work (the cost budget's sampling)",
            ["probe"],
            {(p,): n for p, n in t.sample_rates.items()},
        ),
        (
            "netscope_bpf_cpu_ratio",
            "netscope's BPF programs as a share of one CPU, over the interval bpf_stats last measured",
            [],
            {(): t.bpf_cpu_share} if t.bpf_cpu_share is not None else {},
        ),
        (
            "netscope_bpf_budget_ratio",
            "The share of one CPU netscope's BPF programs are held within",
            [],
            {(): BUDGET_PCT / 100},
        ),
        (
            "netscope_sysctl",
            "The knobs the findings name, their values in force (the numeric ones)",
            ["name"],
            {(n,): v for n, v in t.sysctls.items()},
        ),
        (
            "netscope_device_rx_ring_descriptors",
            "The device's RX ring size in force (ethtool -g)",
            device,
            {k: now for k, (now, _) in t.rings.items()},
        ),
        (
            "netscope_device_rx_ring_max_descriptors",
            "The largest RX ring the driver allows (ethtool -g)",
            device,
            {k: most for k, (_, most) in t.rings.items()},
        ),
    ):
        gauge = GaugeMetricFamily(name, doc, labels=labels)
        for key, v in sorted(values.items()):
            gauge.add_metric(list(key), v)
        yield gauge


def _containers(t: RunningTotals) -> Iterator[Metric]:
    """Per container (runtime:short id, or pod:uid), at most CONTAINERS_MAX at a time and "other"
    for those that never had a series (README "Prometheus export")."""
    rx_packets = CounterMetricFamily(
        "netscope_container_rx_packets",
        "Data queued on the sockets of processes in the container (sock:sk_data_ready: UDP "
        "datagrams, TCP segments with new data), estimated where sampled",
        labels=["container"],
    )
    reads = CounterMetricFamily(
        "netscope_container_reads",
        "Reads that copied received data, by processes in the container",
        labels=["container"],
    )
    read_bytes = CounterMetricFamily(
        "netscope_container_read_bytes", "Bytes those reads copied", labels=["container"]
    )
    sent_bytes = CounterMetricFamily(
        "netscope_container_sent_bytes",
        "Bytes sent through their sockets by processes in the container (sock:sock_send_length)",
        labels=["container"],
    )
    drops = CounterMetricFamily(
        "netscope_container_drops",
        "Packets dropped at the container's sockets, by drop reason (skb:kfree_skb's socket)",
        labels=["container", "reason"],
    )
    for (container, what), n in sorted(t.containers.items()):
        if what == "rx_packets":
            rx_packets.add_metric([container], n)
        elif what == "reads":
            reads.add_metric([container], n)
        elif what == "read_bytes":
            read_bytes.add_metric([container], n)
        elif what == "sent_bytes":
            sent_bytes.add_metric([container], n)
        else:
            drops.add_metric([container, what.removeprefix("drops:")], n)
    yield from (rx_packets, reads, read_bytes, sent_bytes, drops)


def _tx(t: RunningTotals) -> Iterator[Metric]:
    """Every qdisc's `tc -s` counters, what it holds now, and BQL per TX queue."""
    labels = ["device", "netns", "kind", "handle"]
    qdiscs = {
        what: CounterMetricFamily(
            f"netscope_qdisc_{what}",
            f"{what.capitalize()} of the qdisc (tc -s qdisc); netns is empty for netscope's own namespace",
            labels=labels,
        )
        for what in QDISC_COUNTERS
    }
    for (device, netns, kind, handle, what), n in sorted(t.qdiscs.items()):
        qdiscs[what].add_metric([device, netns, kind, handle], n)
    qlen = GaugeMetricFamily(
        "netscope_qdisc_qlen", "Packets the qdisc holds, at the last read", labels=labels
    )
    backlog = GaugeMetricFamily(
        "netscope_qdisc_backlog_bytes", "Bytes the qdisc holds, at the last read", labels=labels
    )
    for qdisc, (packets, nbytes) in sorted(t.qdisc_queued.items()):
        qlen.add_metric(list(qdisc), packets)
        backlog.add_metric(list(qdisc), nbytes)
    bql_labels = ["device", "netns", "queue"]
    inflight = GaugeMetricFamily(
        "netscope_bql_inflight_bytes",
        "Bytes the driver has in flight on the TX queue (BQL, sysfs)",
        labels=bql_labels,
    )
    limit = GaugeMetricFamily(
        "netscope_bql_limit_bytes", "The TX queue's BQL limit (sysfs)", labels=bql_labels
    )
    for queue, (now, most) in sorted(t.bql.items()):
        inflight.add_metric(list(queue), now)
        limit.add_metric(list(queue), most)
    yield from (*qdiscs.values(), qlen, backlog, inflight, limit)
    docs = {
        "retransmits": "TCP segments sent again by the connections' ends in the namespace",
        "resets_sent": "TCP RSTs sent by the connections' ends in the namespace",
        "resets_received": "TCP RSTs received by them",
        "zero_rcv_wnd": "TCP segments received while the receiver's window was 0 (estimated from the sample)",
    }
    tcp = {
        what: CounterMetricFamily(f"netscope_tcp_{what}", docs[what], labels=["netns"]) for what in TCP_EVENTS
    }
    for (netns, what), n in sorted(t.tcp.items()):
        tcp[what].add_metric([netns], n)
    yield from tcp.values()


def _counters(t: RunningTotals) -> Iterator[Metric]:
    softirq = CounterMetricFamily("netscope_softirq", "Softirq runs (/proc/softirqs)", labels=["cpu", "vec"])
    for key, count in sorted(t.softirq_runs.items()):
        softirq.add_metric(list(key), count)
    softirq_s = CounterMetricFamily(
        "netscope_softirq_seconds",
        "Time in softirq handlers per vector (irq:softirq_entry/exit), estimated from sampled runs; "
        "only while the cpus section is collected",
        labels=["cpu", "vec"],
    )
    for key, ns in sorted(t.softirq_ns.items()):
        softirq_s.add_metric(list(key), ns / 1e9)
    cpu_softirq_s = CounterMetricFamily(
        "netscope_cpu_softirq_seconds", "Time in softirqs, all vectors (/proc/stat)", labels=["cpu"]
    )
    for cpu, ns in sorted(t.cpu_softirq_ns.items()):
        cpu_softirq_s.add_metric([cpu], ns / 1e9)
    hardirq = CounterMetricFamily(
        "netscope_hardirq", "Hardirqs per IRQ line (/proc/interrupts)", labels=["irq", "name"]
    )
    for (irq, name), n in sorted(t.hardirqs.items()):
        hardirq.add_metric([irq, name], n)
    napi = {
        what: CounterMetricFamily(f"netscope_napi_{what}", doc, labels=["cpu"])
        for what, doc in (
            ("polls", "NAPI polls (napi:napi_poll)"),
            ("packets", "Packets handled by NAPI polls"),
            ("budget_exhausted", "NAPI polls that used their whole budget"),
        )
    }
    for (cpu, what), n in sorted(t.napi.items()):
        napi[what].add_metric([cpu], n)
    softnet = {
        what: CounterMetricFamily(f"netscope_softnet_{what}", doc, labels=["cpu"])
        for what, doc in (
            ("processed", "Packets the stack took in (/proc/net/softnet_stat)"),
            ("dropped", "Backlog drops (/proc/net/softnet_stat)"),
            ("time_squeeze", "NET_RX runs that ran out of budget or time (/proc/net/softnet_stat)"),
        )
    }
    for (cpu, what), n in sorted(t.softnet.items()):
        softnet[what].add_metric([cpu], n)
    drops = CounterMetricFamily(
        "netscope_skb_drops",
        "Dropped sk_buffs by the kernel's drop reason (skb:kfree_skb)",
        labels=["reason"],
    )
    for reason, n in sorted(t.drops.items()):
        drops.add_metric([reason], n)
    queue_labels = ["device", "netns", "queue"]
    queues = {
        (direction, what): CounterMetricFamily(
            f"netscope_queue_{direction}_{what}",
            f"{what.capitalize()} {'received' if direction == 'rx' else 'sent'} per device queue: the "
            "driver's per-queue counters (netdev qstats), or the device's own for a single-queue device; "
            "netns is empty for netscope's own namespace",
            labels=queue_labels,
        )
        for direction in ("rx", "tx")
        for what in ("packets", "bytes")
    }
    for (device, netns, direction, queue, what), n in sorted(t.queues.items()):
        queues[(direction, what)].add_metric([device, netns, queue], n)
    devices = {
        what: CounterMetricFamily(
            f"netscope_device_{DEVICE_METRICS.get(what, what)}",
            f"The device's own {DEVICE_METRICS.get(what, what)} (stats64)",
            labels=["device", "netns"],
        )
        for what in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", *DEVICE_LOSSES)
    }
    for (device, netns, what), n in sorted(t.devices.items()):
        devices[what].add_metric([device, netns], n)
    yield from _tx(t)
    snmp = CounterMetricFamily(
        "netscope_snmp",
        "The namespace's loss and in counters (/proc/net/snmp, netstat, snmp6)",
        labels=["counter"],
    )
    for counter, n in sorted(t.snmp.items()):
        snmp.add_metric([counter], n)
    stage_labels = ["netns", "stage"]
    balance = {
        what: CounterMetricFamily(f"netscope_stage_{what}_packets", text, labels=stage_labels)
        for what, text in (
            ("in", "What a receive stage took in, by the kernel's counters (README, Stage balance)"),
            ("out", "What a receive stage passed on, by the kernel's counters"),
            ("silent_loss", "What a stage lost with no counter naming it, past the read noise"),
        )
    }
    stage_lost = CounterMetricFamily(
        "netscope_stage_lost_packets",
        "What a receive stage lost, by the counter or drop reason that names it",
        labels=[*stage_labels, "cause"],
    )
    for (netns, stage, what), n in sorted(t.balance.items()):
        if what.startswith("lost:"):
            stage_lost.add_metric([netns, stage, what.removeprefix("lost:")], n)
        else:
            balance[what].add_metric([netns, stage], n)
    runs = CounterMetricFamily(
        "netscope_bpf_program_runs",
        "Runs of netscope's own BPF programs in the intervals bpf_stats measured (one in ten)",
        labels=["probe", "program"],
    )
    run_s = CounterMetricFamily(
        "netscope_bpf_program_run_seconds",
        "Time in netscope's own BPF programs in the measured intervals (ratio to runs: ns per run)",
        labels=["probe", "program"],
    )
    for (probe, program, what), n in sorted(t.programs.items()):
        if what == "runs":
            runs.add_metric([probe, program], n)
        else:
            run_s.add_metric([probe, program], n / 1e9)
    lost = CounterMetricFamily(
        "netscope_ringbuf_events_lost", "Ring-buffer events lost (the buffer was full)", labels=["probe"]
    )
    for probe, n in sorted(t.lost_events.items()):
        lost.add_metric([probe], n)
    losses = [
        CounterMetricFamily(name, text, labels=["probe"])
        for name, text in (
            (
                "netscope_bpf_recursion_misses",
                "Runs of netscope's BPF programs the kernel skipped: one was already running on that CPU",
            ),
            ("netscope_bpf_map_full", "Events netscope's full bounded maps had no room for (not counted)"),
            ("netscope_bpf_map_evicted", "Entries netscope's bounded tables took from a live owner"),
        )
    ]
    for metric, totals in zip(losses, (t.recursion_misses, t.not_counted, t.evicted), strict=True):
        for probe, n in sorted(totals.items()):
            metric.add_metric([probe], n)
    yield from (softirq, softirq_s, cpu_softirq_s, hardirq, *napi.values(), *softnet.values(), drops)
    yield from (*queues.values(), *devices.values(), snmp, *balance.values(), stage_lost)
    yield from (runs, run_s, lost, *losses)
