"""Write dashboards/netscope.json (Grafana) and dashboards/alerts.yml (Prometheus rules) from one
description, so the panels, the rules and the findings' thresholds cannot drift apart.

Run with `make dashboards`; a unit test checks the committed files are what this writes, and a
kernel test evaluates every query and rule in a real Prometheus scraping `netscope export`.
Every expression uses only metrics `netscope export` serves (README "Prometheus export").
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netscope.model import findings
from netscope.model.sampling import BUDGET_PCT

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
I = 'instance="$instance"'  # noqa: E741 (every query's first matcher)
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    repeat: str = ""  # a variable: one panel per value ("cpu", "device")
    description: str = ""


def rate(metric: str, matchers: str = "") -> str:
    return f"rate({metric}{{{I}{',' if matchers else ''}{matchers}}}{RATE})"


OWN_NS = 'netns=""'  # netscope's own namespace: the box's (a container's veths are in its own)
DEV = f'{OWN_NS},device=~"$device"'
INF = 'le="+Inf"'
CPU = 'cpu=~"$cpu"'


def quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(
        Query(f"histogram_quantile({q}, sum by (le) ({rate(metric + '_bucket')}))", f"p{round(q * 100)}")
        for q in (0.5, 0.99)
    )


def rx_tx(metric: str, legend: str) -> tuple[Query, ...]:
    """The selected devices' RX and TX of `metric` (a format of the direction)."""
    return tuple(Query(rate(metric.format(d), DEV), legend.format(d)) for d in ("rx", "tx"))


# Rows in receive-path order, then the way out and netscope's own cost.
ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "NIC",
        (
            Panel(
                "$device packets/s",
                "pps",
                rx_tx("netscope_device_{}_packets_total", "{}"),
                "device",
                "The device's own counters (stats64)",
            ),
            Panel(
                "$device per queue, packets/s",
                "pps",
                rx_tx("netscope_queue_{}_packets_total", "{}-{{{{queue}}}}"),
                "device",
                "The driver's per-queue counters (netdev qstats), or the device's own for one queue",
            ),
            Panel(
                "$device losses/s",
                "pps",
                tuple(
                    Query(rate(f"netscope_device_{what}_total", DEV), what)
                    for what in (
                        "rx_missed_errors",
                        "rx_over_errors",
                        "rx_fifo_errors",
                        "rx_dropped",
                        "tx_dropped",
                    )
                ),
                "device",
                "rx_missed, rx_over and rx_fifo: the NIC found no free descriptor (ring overruns)",
            ),
            Panel(
                "RX ring size",
                "none",
                (
                    Query(f"netscope_device_rx_ring_descriptors{{{I},{DEV}}}", "{{device}}"),
                    Query(f"netscope_device_rx_ring_max_descriptors{{{I},{DEV}}}", "{{device}} max"),
                ),
                description="ethtool -g: the ring in force and the largest the driver allows",
            ),
        ),
    ),
    (
        "Hardirq",
        (
            Panel(
                "Hardirqs/s by IRQ line (top 10)",
                "ops",
                (Query(f"topk(10, {rate('netscope_hardirq_total')})", "{{irq}} {{name}}"),),
                description="/proc/interrupts",
            ),
        ),
    ),
    (
        "Softirq and NAPI",
        (
            Panel(
                "CPU $cpu: NET_RX and NET_TX runs/s",
                "ops",
                (Query(rate("netscope_softirq_total", f'{CPU},vec=~"NET_RX|NET_TX"'), "{{vec}}"),),
                "cpu",
                "/proc/softirqs",
            ),
            Panel(
                "CPU $cpu: time in softirqs",
                "percentunit",
                (Query(rate("netscope_cpu_softirq_seconds_total", CPU), "softirq"),),
                "cpu",
                "/proc/stat's softirq column: every vector",
            ),
            Panel(
                "CPU $cpu: softnet",
                "ops",
                (
                    Query(rate("netscope_softnet_processed_total", CPU), "processed"),
                    Query(rate("netscope_softnet_dropped_total", CPU), "backlog drops"),
                    Query(rate("netscope_softnet_time_squeeze_total", CPU), "time_squeeze"),
                ),
                "cpu",
                "/proc/net/softnet_stat: backlog drops (netdev_max_backlog) and NET_RX runs out of budget",
            ),
        ),
    ),
    (
        "Stack",
        (
            Panel(
                "Stage balance, every namespace: in, lost, lost silently (packets/s)",
                "pps",
                (
                    Query(f"sum by (stage) ({rate('netscope_stage_in_packets_total')})", "{{stage}} in"),
                    Query(
                        f"sum by (stage, cause) ({rate('netscope_stage_lost_packets_total')})",
                        "{{stage}} lost: {{cause}}",
                    ),
                    Query(
                        f"sum by (stage) ({rate('netscope_stage_silent_loss_packets_total')})",
                        "{{stage}} silent loss",
                    ),
                ),
                description="Each stage's in and losses, by the kernel's counters (README, Stage balance)",
            ),
            Panel(
                "Drops by reason (top 10)",
                "pps",
                (Query(f"topk(10, sum by (reason) ({rate('netscope_skb_drops_total')}))", "{{reason}}"),),
                description="skb:kfree_skb's drop reason, once per drop",
            ),
            Panel(
                "Stack latency",
                "s",
                quantiles("netscope_stack_latency_seconds"),
                description="net:netif_receive_skb to the socket queue, sampled under the cost budget",
            ),
            Panel(
                "Protocol in and loss counters",
                "pps",
                (Query(f"sum by (counter) ({rate('netscope_snmp_total')}) > 0", "{{counter}}"),),
                description="/proc/net/snmp, netstat, snmp6 of netscope's namespace (those that moved)",
            ),
        ),
    ),
    (
        "Socket and copy",
        (
            Panel(
                "Copy latency",
                "s",
                quantiles("netscope_copy_latency_seconds"),
                description="Wait on the socket before the process copied the data (sampled, in budget)",
            ),
            Panel(
                "Reads/s",
                "ops",
                (Query(f"sum({rate('netscope_copy_latency_seconds_bucket', INF)})", "reads"),),
            ),
            Panel(
                "Socket losses/s",
                "pps",
                tuple(
                    Query(f"sum({rate('netscope_snmp_total', 'counter=' + json.dumps(c))})", c)
                    for c in ("Udp.NoPorts", "Udp.RcvbufErrors", "Udp6.NoPorts", "Udp6.RcvbufErrors")
                ),
                description="No socket on the port; a socket whose receive buffer was full (rmem)",
            ),
        ),
    ),
    (
        "TX",
        (
            Panel(
                "Qdiscs: packets/s",
                "pps",
                (Query(rate("netscope_qdisc_packets_total", OWN_NS), "{{device}} {{kind}} {{handle}}"),),
            ),
            Panel(
                "Qdiscs: drops, requeues, overlimits/s",
                "pps",
                tuple(
                    Query(
                        rate(f"netscope_qdisc_{what}_total", OWN_NS), f"{{{{device}}}} {{{{handle}}}} {what}"
                    )
                    for what in ("drops", "requeues", "overlimits")
                ),
            ),
            Panel(
                "Qdiscs: backlog",
                "bytes",
                (Query(f"netscope_qdisc_backlog_bytes{{{I},{OWN_NS}}}", "{{device}} {{kind}} {{handle}}"),),
            ),
            Panel(
                "BQL per TX queue",
                "bytes",
                (
                    Query(f"netscope_bql_inflight_bytes{{{I},{OWN_NS}}}", "{{device}} tx-{{queue}} inflight"),
                    Query(f"netscope_bql_limit_bytes{{{I},{OWN_NS}}}", "{{device}} tx-{{queue}} limit"),
                ),
            ),
            Panel(
                "TCP: retransmits and resets/s",
                "ops",
                tuple(
                    Query(f"sum({rate(f'netscope_tcp_{what}_total')})", what)
                    for what in ("retransmits", "resets_sent", "resets_received")
                ),
                description="Every namespace's connections",
            ),
        ),
    ),
    (
        "netscope's own cost",
        (
            Panel(
                "BPF: share of a CPU",
                "percentunit",
                (
                    Query(f"netscope_bpf_cpu_ratio{{{I}}}", "BPF programs"),
                    Query(f"netscope_bpf_budget_ratio{{{I}}}", "budget"),
                ),
                description="bpf_stats, one interval in ten; per-packet hooks sample to stay in budget",
            ),
            Panel(
                "Process CPU and memory",
                "percentunit",
                (Query(rate("netscope_process_cpu_seconds_total"), "CPU"),),
            ),
            Panel("Process RSS", "bytes", (Query(f"netscope_process_resident_memory_bytes{{{I}}}", "RSS"),)),
            Panel(
                "Sampling: 1 in N and probes attached",
                "none",
                (
                    Query(
                        f"netscope_probe_sample_rate{{{I}}} and netscope_probe_up{{{I}}} == 1",
                        "{{probe}} 1:N",
                    ),
                    Query(f"netscope_probe_failed{{{I}}}", "{{probe}} failed"),
                ),
            ),
            Panel(
                "What netscope could not count/s",
                "ops",
                tuple(
                    Query(f"sum({rate(m)})", label)
                    for m, label in (
                        ("netscope_ringbuf_events_lost_total", "ring-buffer events lost"),
                        ("netscope_bpf_map_full_total", "full map"),
                        ("netscope_bpf_recursion_misses_total", "recursion misses"),
                    )
                ),
            ),
        ),
    ),
)


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y, ident = 0, 0
    for row, members in ROWS:
        ident += 1
        panels.append(
            {
                "type": "row",
                "title": row,
                "id": ident,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        y += 1
        x = 0
        for p in members:
            ident += 1
            width = 8 if p.repeat else 12
            if x + width > 24:
                x, y = 0, y + 8
            panel: dict[str, Any] = {
                "type": "timeseries",
                "title": p.title,
                "id": ident,
                "datasource": DS,
                "gridPos": {"h": 8, "w": width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(ord("A") + n), "datasource": DS, "expr": q.expr, "legendFormat": q.legend}
                    for n, q in enumerate(p.queries)
                ],
            }
            if p.description:
                panel["description"] = p.description
            if p.repeat:
                panel |= {"repeat": p.repeat, "repeatDirection": "h", "maxPerRow": 3}
            panels.append(panel)
            x += width
        y += 8
    return {
        "title": "netscope: the receive path",
        "uid": "netscope",
        "description": "netscope export, the receive path in order, the way out and netscope's own cost",
        "tags": ["netscope", "network", "linux"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables()},
        "panels": panels,
    }


def variables() -> list[dict[str, Any]]:
    def query(name: str, expr: str, multi: bool) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": DS,
            "definition": expr,
            "query": {"query": expr, "refId": name},
            "refresh": 2,  # on time range change: a box's devices come and go
            "sort": 3 if name == "cpu" else 1,  # CPUs in numeric order
            "multi": multi,
            "includeAll": multi,
            "current": {},
        }

    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
        },
        query("instance", "label_values(netscope_intervals_total, instance)", False),
        query("cpu", f"label_values(netscope_softirq_total{{{I}}}, cpu)", True),
        query("device", f"label_values(netscope_device_rx_packets_total{{{I},{OWN_NS}}}, device)", True),
    ]


# --- Rules: recording rules the alerts and ad-hoc queries share, then one alert per finding ---


def now(selector: str, *labels: str) -> str:
    """An annotation's template: the value in force on the alerting instance of the series that
    `selector` names (a printf format of `labels`, each a $labels field), "?" when there is none."""
    args = " ".join(f"$labels.{label}" for label in labels)
    found = "{{ . | first | value }}{{ else }}?{{ end }}"
    return f"{{{{ with printf `{selector}` {args} | query }}}}{found}"


def knob_now(name: str) -> str:
    """The tunable's value in force on the alerting instance."""
    return now("netscope_sysctl{instance=%q,name=" + json.dumps(name) + "}", "instance")


def rules() -> dict[str, Any]:
    recording = [
        (
            "instance:netscope_skb_drops:rate1m",
            "sum by (instance, reason) (rate(netscope_skb_drops_total[1m]))",
        ),
        (
            "instance_cpu:netscope_softnet_dropped:rate1m",
            "sum by (instance, cpu) (rate(netscope_softnet_dropped_total[1m]))",
        ),
        (
            "instance_cpu:netscope_softnet_time_squeeze:rate1m",
            "sum by (instance, cpu) (rate(netscope_softnet_time_squeeze_total[1m]))",
        ),
        (
            "instance_device:netscope_ring_overruns:rate1m",
            "sum by (instance, device, netns) ("
            + " + ".join(
                f"rate(netscope_device_rx_{what}_errors_total[1m])" for what in ("missed", "over", "fifo")
            )
            + ")",
        ),
    ]
    alerts = [
        alert(
            "NetscopeBacklogDrops",
            f"instance_cpu:netscope_softnet_dropped:rate1m > {findings.BACKLOG_DROPS_PER_S:g}",
            "2m",
            "warning",
            "CPU {{ $labels.cpu }} drops packets at its backlog: {{ $value | humanize }}/s",
            "The per-CPU input queue (RPS, veth, loopback) was full. Knob: net.core.netdev_max_backlog "
            f"(now {knob_now('net.core.netdev_max_backlog')}); spread the load with RPS/RSS.",
        ),
        alert(
            "NetscopeTimeSqueeze",
            f"instance_cpu:netscope_softnet_time_squeeze:rate1m > {findings.TIME_SQUEEZE_PER_S:g}",
            "5m",
            "info",
            "NET_RX on CPU {{ $labels.cpu }} runs out of budget: {{ $value | humanize }} squeezes/s",
            "Packets wait for the next run. Knob: net.core.netdev_budget / netdev_budget_usecs "
            f"(now {knob_now('net.core.netdev_budget')} / {knob_now('net.core.netdev_budget_usecs')}).",
        ),
        alert(
            "NetscopeRingOverruns",
            f"instance_device:netscope_ring_overruns:rate1m > {findings.RING_OVERRUNS_PER_S:g}",
            "2m",
            "warning",
            "{{ $labels.device }} overruns its RX ring: {{ $value | humanize }} packets/s lost in the NIC",
            "rx_missed + rx_over + rx_fifo: no free descriptor. Knob: the RX ring size, "
            "ethtool -G {{ $labels.device }} rx N (now "
            + now("netscope_device_rx_ring_descriptors{instance=%q,device=%q}", "instance", "device")
            + " of at most "
            + now("netscope_device_rx_ring_max_descriptors{instance=%q,device=%q}", "instance", "device")
            + ").",
        ),
        alert(
            "NetscopeNoSocketDrops",
            f'instance:netscope_skb_drops:rate1m{{reason="NO_SOCKET"}} > {findings.NO_SOCKET_PER_S:g}',
            "5m",
            "info",
            "Traffic to ports nobody listens on: {{ $value | humanize }} NO_SOCKET drops/s",
            "Knob: a listener on the port, or the sender's configuration (netscope's Drops pane and the "
            "no_socket finding name the ports).",
        ),
        alert(
            "NetscopeReceiveBufferDrops",
            'sum by (instance) (instance:netscope_skb_drops:rate1m{reason="SOCKET_RCVBUFF"})'
            f" > {findings.RCVBUF_DROPS_PER_S:g}",
            "2m",
            "warning",
            "Sockets' receive buffers overflow: {{ $value | humanize }} datagrams/s dropped",
            "A reader is too slow for its buffer. Knob: net.core.rmem_default / rmem_max "
            f"(now {knob_now('net.core.rmem_default')} / {knob_now('net.core.rmem_max')}) "
            "and the socket's SO_RCVBUF.",
        ),
        alert(
            "NetscopeSilentLoss",
            "sum by (instance, netns, stage) (increase(netscope_stage_silent_loss_packets_total[5m])) > 0",
            "0m",
            "warning",
            "Stage {{ $labels.stage }} lost {{ $value | humanize }} packets no kernel counter names",
            "In minus out minus every named loss, past the read noise (README, Stage balance). Knob: none "
            "names this loss; netscope's Drops pane and a drop-reason trace (pwru) find where.",
        ),
        alert(
            "NetscopeCostOverBudget",
            "netscope_bpf_cpu_ratio > netscope_bpf_budget_ratio",
            "10m",
            "warning",
            "netscope's BPF programs take {{ $value | humanizePercentage }} of a CPU",
            f"Over its budget of {BUDGET_PCT:g}% of a CPU. Knob: netscope export --sections (fewer hooks) "
            "or --sample N (a higher 1-in-N).",
        ),
        alert(
            "NetscopeProbeFailed",
            "netscope_probe_failed == 1",
            "2m",
            "warning",
            "netscope's {{ $labels.probe }} probe could not attach",
            "Its metrics are missing; the journal of netscope-export.service says why. Knob: the kernel's "
            "BTF, tracefs and the unit's capabilities (contrib/netscope-export.service).",
        ),
        alert(
            "NetscopeStalled",
            "time() - netscope_last_interval_timestamp_seconds > 30",
            "2m",
            "critical",
            "netscope export has counted no interval for {{ $value | humanizeDuration }}",
            "Its sampling loop is stuck; /-/healthy says 503. Knob: restart netscope-export.service.",
        ),
        alert(
            "NetscopeDown",
            'up{job="netscope"} == 0',
            "2m",
            "critical",
            "netscope export on {{ $labels.instance }} does not answer scrapes",
            "Every netscope metric of this box is missing. Knob: systemctl status netscope-export "
            "(the scrape job must be named netscope).",
        ),
    ]
    return {
        "groups": [
            {
                "name": "netscope.rules",
                "rules": [{"record": name, "expr": expr} for name, expr in recording],
            },
            {"name": "netscope.alerts", "rules": alerts},
        ]
    }


def alert(name: str, expr: str, after: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": after,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def rules_text() -> str:
    header = "# Prometheus rules for netscope export: written by scripts/dashboards.py (make dashboards).\n"
    return header + yaml.safe_dump(rules(), sort_keys=False, width=1000, allow_unicode=True)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    (OUT / "netscope.json").write_text(dashboard_text())
    (OUT / "alerts.yml").write_text(rules_text())
    print(f"wrote {OUT / 'netscope.json'} and {OUT / 'alerts.yml'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
