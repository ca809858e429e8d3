"""`netscope export`: the live source's running totals as Prometheus metrics, through a custom
prometheus_client collector. Counters count since netscope started; labels stay bounded (no
per-flow labels)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from netscope.model.counters import TCP_EVENTS, RunningTotals, cumulative
from netscope.model.sample import QDISC_COUNTERS, HostInfo, Sample


class NetscopeCollector(Collector):
    """Fed each interval's sample by the sampling loop; read by scrapes from the server thread."""

    def __init__(self, info: HostInfo) -> None:
        self._lock = threading.Lock()
        self._totals = RunningTotals(info)

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._totals.add(sample)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
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
            samples = GaugeMetricFamily("netscope_samples", "Intervals counted since netscope started")
            samples.add_metric([], t.samples)
        yield from (copy, stack, up, samples, *_containers(t))


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
            f"netscope_device_{what}",
            f"The device's own {what.replace('_', ' ')} (stats64)",
            labels=["device", "netns"],
        )
        for what in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")
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
