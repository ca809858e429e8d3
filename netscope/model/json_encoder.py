"""The headless JSON object for one interval (`netscope snapshot --json`). Pure.

Counts are per interval, exactly what the kernel counted; rates are left to the reader. The schema
is documented in README.md; later panes add sections to this same object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netscope.model.balance import StageBalance
from netscope.model.cpu import interrupt_counts, napi_per_cpu, softirq_runs
from netscope.model.drops import DropsView, protocol_name
from netscope.model.findings import finding_json
from netscope.model.flows import PROTO_NAMES, FlowsView
from netscope.model.latency import LatencyView
from netscope.model.processes import ProcessesView
from netscope.model.rings import STREAK_BUCKETS, WORK_BUCKETS, RingsView
from netscope.model.sample import Sample, TcpConn, rate_of
from netscope.model.tcp import IPPROTO_TCP, TcpPath
from netscope.model.timeline import ViewModel
from netscope.model.tx import TxView, tc_handle


def snapshot_json(view: ViewModel) -> dict[str, Any]:
    """The newest interval of the timeline, from the views the TUI shows (the Rings view narrowed
    by --interface/--netns, the flows by --filter and --top) and the findings standing after it."""
    info, sample = view.info, view.latest
    names = sample.softirq_names
    soft = {s.cpu: s for s in sample.softirq or ()}
    # Counts /proc keeps stand in for the hooks' when these did not run; their times stay null.
    interrupts = interrupt_counts(sample)
    runs = softirq_runs(sample) or {}
    napi = napi_per_cpu(sample, info.cpus) or {}
    softnet = {s.cpu: s for s in sample.softnet}
    stat = {t.cpu: t for t in sample.proc_cpu_times}
    cpus = []
    for i, cpu in enumerate(info.cpus):
        s = soft.get(cpu)
        n = napi.get(cpu)
        sn = softnet.get(cpu)
        rx = names.index("NET_RX") if "NET_RX" in names else None
        cpus.append(
            {
                "cpu": cpu,
                "hardirqs": sum(c.per_cpu[i] for c in interrupts) if interrupts is not None else None,
                "hardirq_time_ns": (
                    sum(c.time_ns[i] for c in sample.hardirq) if sample.hardirq is not None else None
                ),
                "softirqs": dict(zip(names, runs[cpu], strict=False)) if cpu in runs else None,
                "softirq_raises": dict(zip(names, s.raises, strict=False)) if s else None,
                # all vectors, the kernel's own account (/proc/stat); per vector, from sampled runs
                "softirq_time_total_ns": stat[cpu].softirq_ns if cpu in stat else None,
                "softirq_time_ns": dict(zip(names, s.time_ns, strict=False)) if s else None,
                "net_rx_wait_ns_max": s.wait_ns_max[rx] if s and rx is not None else None,
                "net_rx_wait_ns_sum": s.wait_ns_sum[rx] if s and rx is not None else None,
                "net_rx_wait_count": s.wait_count[rx] if s and rx is not None else None,
                "napi_polls": n.polls if n else None,
                "napi_packets": n.packets if n else None,
                "napi_budget_exhausted": n.budget_exhausted if n else None,
                "processed": sn.processed if sn else None,
                "time_squeeze": sn.time_squeeze if sn else None,
                "backlog_drops": sn.dropped if sn else None,
            }
        )
    lines = {line.irq: line for line in sample.irq_lines}
    irqs = []
    for count in interrupts or ():
        line = lines.get(count.irq)
        irqs.append(
            {
                "irq": count.irq,
                "name": line.name if line else "",
                "device": line.device if line else "",
                "queue": line.queue if line else "",
                "count": sum(count.per_cpu),
                "per_cpu": list(count.per_cpu),
                "time_ns": sum(count.time_ns) if count.time_ns is not None else None,
            }
        )
    out = {
        "ts": round(sample.ts, 6),
        "interval_s": round(sample.interval_s, 6),
        "detail": {"every": sample.detail_every, "measured": sample.detail_measured},
        # Counters that could not be read this interval (their counts come with the next read),
        # and those whose counts here span longer than the interval (their last read failed).
        "read_failed": list(sample.read_failed),
        "spans": {source: round(seconds, 6) for source, seconds in sample.spans},
        "host": info.host,
        "kernel": info.kernel,
        "cpus": cpus,
        "irqs": irqs,
        "probes": [
            {
                "name": p.name,
                "state": p.state.value,
                "error": p.error,
                "lost_events": p.lost_events,
                "recursion_misses": p.recursion_misses,  # runs the kernel skipped: events missed
                "not_counted": p.not_counted,  # events a full bounded map had no room for
                "evicted": p.evicted,  # entries a bounded table took from a live owner
                "sample_rate": p.sample_rate,
                "window_every": p.window_every,  # > 1: its figures measured 1 interval in this many
            }
            for p in sample.probes
        ],
    }
    out.update(drops_json(view.mine, view.interval_drops))
    # The namespace's own loss counters over the interval, "Udp.NoPorts": 12 (read without BPF too).
    out["snmp"] = {f"{c.group}.{c.name}": c.count for c in sample.snmp}
    out["balance"] = balance_json(sample, view.balance)
    out.update(rings_json(sample, view.rings))
    out["tx"] = tx_json(sample, view.tx)
    out["copy_latency"] = latency_json(view.interval_latency)
    fresh = view.interval_latency is not None or view.interval_drops is not None or sample.sends is not None
    out["processes"] = processes_json(view.processes if fresh else None, sample.interval_s)
    out.update(flows_json(view.mine, view.flows))
    out["cost"] = cost_json(sample)
    out["findings"] = [finding_json(a) for a in view.findings]
    return out


def processes_json(view: ProcessesView | None, interval_s: float) -> list[dict[str, Any]] | None:
    """The processes of the interval that read, sent or had drops at their sockets, busiest first,
    with the interval's counts as the flows have theirs (README "Processes and containers"); None
    when none of their probes reported."""
    if view is None:
        return None
    return [
        {
            "pid": r.pid,
            "comm": r.comm,
            "cgroup": r.cgroup or None,  # its cgroup v2 path
            "container": r.group if r.container else None,  # runtime:short id, or pod:uid
            "container_name": r.container_name or None,  # as the runtime's state files name it
            "unit": r.group if not r.container and r.group else None,  # else its systemd unit or path
            "netns": r.netns or None,
            "rx_packets": round(r.rx_packets_per_s * interval_s),  # queued on its sockets (UDP: datagrams)
            "reads": round(r.reads_per_s * interval_s),  # reads that copied data from its sockets
            "rx_bytes": round(r.bytes_per_s * interval_s),  # the bytes they copied
            "tx_bytes": round(r.tx_bytes_per_s * interval_s),  # sent through its sockets
            "drops": dict(r.drops),  # at its sockets, by reason (exact)
            "copy_p50_us": _us(r.p50_ns),
            "copy_p99_us": _us(r.p99_ns),
            "sockets": r.sockets,
            "estimated": r.estimated,  # reads and rx_bytes, or the percentiles, from samples
            "tx_estimated": r.tx_estimated,
        }
        for r in view.rows
    ]


def balance_json(sample: Sample, rows: Iterable[StageBalance]) -> list[dict[str, Any]]:
    """Per stage: in = out + lost + unaccounted, from the kernel's counters (model/balance.py);
    `checked` false where unaccounted is not a loss (the transport stage: UDP counts at read time;
    the socket stage: a queue); `estimated` where the figures come from sampled hooks (socket);
    `beyond_noise`: unaccounted past the noise, a silent loss (the finding) once the next interval
    does not give it back."""
    names = dict(sample.netns_names)
    return [
        {
            "netns": row.netns,
            "netns_name": names.get(row.netns, ""),
            "stage": row.stage,
            "in": row.in_,
            "out": row.out,
            "lost": dict(row.lost),
            "unaccounted": row.unaccounted,
            "noise": row.noise,
            "checked": row.checked,
            "estimated": row.estimated,
            "beyond_noise": row.beyond_noise,
        }
        for row in rows
    ]


def cost_json(sample: Sample) -> dict[str, Any] | None:
    """netscope's own cost: CPU % of one core and RSS over the interval; per BPF program its runs
    and run time over the last interval bpf_stats measured (one in ten when netscope turns it on
    itself: it slows every program run)."""
    cost = sample.cost
    if cost is None:
        return None
    return {
        "cpu_pct": round(cost.cpu_pct, 2),
        "rss_bytes": cost.rss_bytes,
        "bpf_map_bytes": cost.map_bytes,  # the kernel's memlock of netscope's maps
        "bpf_stats": cost.bpf_stats,
        "clock_ns": round(cost.clock_ns, 1),  # bpf_stats' own cost per run: not netscope's
        "measured_interval_s": round(cost.measured_interval_s, 6),
        "measured_age_s": round(cost.measured_age_s, 3),
        "programs": [
            {"probe": p.probe, "program": p.program, "runs": p.runs, "run_time_ns": p.run_time_ns}
            for p in cost.programs
        ],
    }


def flows_json(sample: Sample, view: FlowsView | None) -> dict[str, Any]:
    if view is None:
        return {
            "flows": None,
            "flows_other": None,
            "flows_sample_rate": None,
            "flows_not_held": None,
            "flows_unseen": None,
        }
    other = view.others
    return {
        "flows": [
            {
                "proto": PROTO_NAMES.get(r.flow.proto, str(r.flow.proto)),
                "src": r.flow.saddr,
                "sport": r.flow.sport,
                "dst": r.flow.daddr,
                "dport": r.flow.dport,
                "netns": r.flow.netns,
                "netns_name": r.netns,
                "rx_packets": r.flow.rx_packets,
                "rx_bytes": r.flow.rx_bytes,
                "copied_bytes": r.copied_bytes,
                "drops": dict(r.flow.drops),
                "copy_p50_us": _us(r.copy_p50_ns),
                "copy_p99_us": _us(r.copy_p99_ns),
                "pid": r.pid,
                "comm": r.comm or None,
                "cpus": list(r.flow.cpus),
                "queues": list(r.flow.queues),
                "tcp": tcp_json(r.tcp) if r.flow.proto == IPPROTO_TCP else None,
            }
            for r in view.rows
        ],
        # The flows past the top N, summed: with the rows, the interval's totals.
        "flows_other": {
            "flows": other.flows,
            "rx_packets": other.rx_packets,
            "rx_bytes": other.rx_bytes,
            "drops": dict(other.drops),
        },
        "flows_sample_rate": rate_of(sample, "flows"),  # > 1: rx_packets/rx_bytes are estimates
        # What the kernel's full flow table could not hold: its packets are in flows_other.
        "flows_not_held": {"rx_packets": view.not_held, "drops": view.not_held_drops},
        # Packets softnet processed that the duty cycle's window saw too little of to attribute to a
        # flow (a flood that stopped before it opened): in flows_other.
        "flows_unseen": sample.flows.unseen if sample.flows else 0,
        "flow_filter": view.filter,
    }


def tcp_json(path: TcpPath | None) -> dict[str, Any]:
    """A TCP flow's two ends on this box (null: not here, or nothing in the interval)."""

    def end(c: TcpConn | None) -> dict[str, Any] | None:
        if c is None:
            return None
        return {
            "netns": c.netns,
            "local": f"{c.laddr}:{c.lport}" if c.family == 4 else f"[{c.laddr}]:{c.lport}",
            "retransmits": c.retransmits,
            "resets_sent": c.resets_sent,
            "resets_received": c.resets_received,
            "rcv_space_adjust": c.rcv_space_adjust,
            "rcvbuf_grow": c.rcvbuf_grow,
            "exceed_buf": c.exceed_buf,
            "segments_sampled": c.segments,  # received, estimated from the sample
            "zero_rcv_wnd": c.zero_rcv_wnd,  # ... while its own window was 0 (estimated)
            "zero_snd_wnd": c.zero_snd_wnd,  # ... while the peer's was 0 (estimated)
            "srtt_us": c.srtt_us,  # at the last sampled segment; null: none sampled
            "snd_cwnd": c.snd_cwnd,
            "snd_ssthresh": c.snd_ssthresh,
            "rcv_wnd": c.rcv_wnd,
            "snd_wnd": c.snd_wnd,
            "rcvbuf": c.rcvbuf,
            "window_clamp": c.window_clamp,
        }

    return {
        "retransmits": path.retransmits if path else 0,
        "receiver": end(path.local if path else None),
        "sender": end(path.peer if path else None),
    }


def _us(ns: float | None) -> float | None:
    return round(ns / 1000.0, 1) if ns is not None else None


def latency_json(view: LatencyView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    a = view.all
    st = view.stack
    return {
        "sample_rate": view.sample_rate,  # 1 in N arrivals timed: > 1, the percentiles are a sample's
        "reads": view.reads,  # every read: exact while "reads_watched" is 1
        # the share of the interval the reads' hook was on: below 1 (a duty cycle in a flood), the
        # reads and bytes here and per process and socket are what it counted, scaled up
        "reads_watched": round(view.reads_watched, 3),
        "arrivals": view.arrivals,
        "evicted": view.evicted,  # live sockets the bounded table stopped following
        "untimed": view.untimed,  # sampled arrivals left untimed (read first, or raced)
        "uncounted": view.uncounted,  # reads not counted: not in "reads"
        "all": {
            "count": a.count,
            "bytes": a.bytes,
            "p50_us": _us(a.p50_ns),
            "p90_us": _us(a.p90_ns),
            "p99_us": _us(a.p99_ns),
            "max_us": _us(a.max_ns),
            # reads per power-of-two octave of the wait, from 2^10 ns (about 1 µs) up
            "hist": {f"{1 << (10 + i)}ns": n for i, n in enumerate(view.octaves) if n},
        },
        "by_process": [
            {
                "pid": p.pid,
                "comm": p.comm,
                "reads": p.reads,
                "count": p.stats.count,
                "bytes": p.stats.bytes,
                "p50_us": _us(p.stats.p50_ns),
                "p90_us": _us(p.stats.p90_ns),
                "p99_us": _us(p.stats.p99_ns),
                "max_us": _us(p.stats.max_ns),
                "sockets": [
                    {
                        "socket": s.label,
                        "count": s.stats.count,
                        "bytes": s.stats.bytes,
                        "p50_us": _us(s.stats.p50_ns),
                        "p99_us": _us(s.stats.p99_ns),
                    }
                    for s in p.sockets
                ],
            }
            for p in view.processes
        ],
        "coarsened": view.coarsened,
        # device (net:netif_receive_skb) -> socket queue (sk_data_ready), of sampled packets
        "stack": {
            "sample_rate": view.stack_rate,
            "count": st.count,
            "p50_us": _us(st.p50_ns),
            "p90_us": _us(st.p90_ns),
            "p99_us": _us(st.p99_ns),
            "unknown": view.stack_unknown,
        }
        if st is not None
        else None,
    }


def rings_json(sample: Sample, view: RingsView) -> dict[str, Any]:
    queues = []
    devices = []
    for d in view.devices:
        netns_name = dict(sample.netns_names).get(d.netns, "")
        ident = {"device": d.ifname, "netns": d.netns, "netns_name": netns_name}
        for q in d.queues:
            napi = d.napi_for(q)
            queues.append(
                {
                    **ident,
                    "queue": q.queue,
                    "rx_packets": q.rx_packets if view.live else None,
                    "rx_bytes": q.rx_bytes if view.live else None,
                    "tx_packets": q.tx_packets if view.live else None,
                    "tx_bytes": q.tx_bytes if view.live else None,
                    "estimated": q.estimated,  # from the rings probe's sample, not a kernel counter
                    "rx_ring_size": d.stats.rx_ring if d.stats else None,
                    "tx_ring_size": d.stats.tx_ring if d.stats else None,
                    "napi_id": napi.napi_id if napi else None,
                    "napi_polls": napi.pressure.polls if napi else None,
                    "napi_work": napi.pressure.packets if napi else None,
                    "budget_exhausted": napi.pressure.budget_exhausted if napi else None,
                    "work_hist": dict(zip(WORK_BUCKETS, napi.pressure.work_hist, strict=True))
                    if napi
                    else None,
                    "bql_inflight": q.bql_inflight,
                    "bql_limit": q.bql_limit,
                }
            )
        s = d.stats
        devices.append(
            {
                **ident,
                "ifindex": d.ifindex,
                "driver": d.driver,
                "rx_packets": s.rx_packets if s else None,
                "tx_packets": s.tx_packets if s else None,
                "rx_bytes": s.rx_bytes if s else None,
                "tx_bytes": s.tx_bytes if s else None,
                "rx_missed": s.rx_missed if s else None,
                "rx_over": s.rx_over if s else None,
                "rx_fifo": s.rx_fifo if s else None,
                "rx_dropped": s.rx_dropped if s else None,
                "tx_dropped": s.tx_dropped if s else None,
                "qdisc_drops": s.qdisc_drops if s else None,
                "rx_ring_size": s.rx_ring if s else None,
                "rx_ring_max": s.rx_ring_max if s else None,
                "tx_ring_size": s.tx_ring if s else None,
                "tx_ring_max": s.tx_ring_max if s else None,
                "qstats": {
                    f"{kind}-{queue}": {
                        name: value for k, qu, name, value in s.qstats if (k, qu) == (kind, queue)
                    }
                    for kind, queue in sorted({(k, qu) for k, qu, _, _ in s.qstats})
                }
                if s
                else None,
                "napi": [
                    {
                        "napi_id": n.napi_id,
                        "polls": n.pressure.polls,
                        "work": n.pressure.packets,
                        "budget_exhausted": n.pressure.budget_exhausted,
                        "work_hist": dict(zip(WORK_BUCKETS, n.pressure.work_hist, strict=True)),
                        "full_budget_streaks": dict(zip(STREAK_BUCKETS, n.pressure.streak_hist, strict=True)),
                    }
                    for n in d.napi
                ],
            }
        )
    return {"queues": queues, "devices": devices}


def tx_json(sample: Sample, view: TxView | None) -> dict[str, Any] | None:
    """The way out over the interval: what IP took from sockets and lost before the devices, each
    device's qdiscs (tc -s), TX queues with BQL, drops and drop reasons."""
    if view is None:
        return None
    names = dict(sample.netns_names)
    return {
        "out_requests": view.out_requests,  # Ip/Ip6 OutRequests: what IP took from sockets to send
        "send_losses": dict(view.send_losses),
        "drop_reasons": dict(view.reasons) if view.reasons is not None else None,
        "devices": [
            {
                "device": d.ifname,
                "netns": d.netns,
                "netns_name": names.get(d.netns, ""),
                "ifindex": d.ifindex,
                "kind": d.kind,
                "tx_packets": d.tx_packets,
                "tx_bytes": d.tx_bytes,
                "tx_dropped": d.tx_dropped,
                "txqueuelen": d.txqueuelen,
                "qdisc_drops": d.qdisc_drops,
                "drop_reasons": dict(d.reasons),
                # the wait of sampled packets in its qdisc (null: not measured)
                "qdisc_wait_p50_us": _us(d.wait.p50_ns) if d.wait else None,
                "qdisc_wait_p99_us": _us(d.wait.p99_ns) if d.wait else None,
                "qdisc_wait_sampled": d.wait.count if d.wait else 0,
                "qdiscs": [
                    {
                        "handle": tc_handle(q.stats.handle),
                        "parent": tc_handle(q.stats.parent),
                        "kind": q.stats.kind,
                        "packets": q.stats.packets,
                        "bytes": q.stats.bytes,
                        "drops": q.stats.drops,
                        "requeues": q.stats.requeues,
                        "overlimits": q.stats.overlimits,
                        "qlen": q.stats.qlen,  # at the read
                        "backlog_bytes": q.stats.backlog,
                        "limit": q.stats.limit,
                        "limit_unit": q.stats.limit_unit or None,
                        "limit_knob": q.stats.limit_knob if q.stats.limit is not None else None,
                    }
                    for q in d.qdiscs
                ],
                "queues": [
                    {
                        "queue": q.queue,
                        "tx_packets": q.tx_packets,
                        "tx_bytes": q.tx_bytes,
                        "estimated": q.estimated,
                        "bql_inflight": q.bql_inflight,
                        "bql_limit": q.bql_limit,
                    }
                    for q in d.queues
                ],
            }
            for d in view.devices
        ],
    }


EVENTS_PER_INTERVAL = 100  # at most this many logged drops printed per interval (all are counted)


def drops_json(sample: Sample, view: DropsView | None) -> dict[str, Any]:
    drops = sample.drops
    if drops is None or view is None:
        return {"drops": None, "drop_log": None}
    reasons = []
    for row in view.rows:
        count = next(sum(r.per_cpu) for r in drops.reasons if r.reason == row.reason)
        reasons.append(
            {
                "reason": row.name,
                "reason_id": row.reason,
                "subsystem": row.subsystem,
                "count": count,
                "locations": [{"symbol": r.key, "count": r.count} for r in row.locations],
                "protocols": {r.key: r.count for r in row.protocols},
                "devices": {r.key: r.count for r in row.devices},
                "cpus": {r.key.removeprefix("CPU"): r.count for r in row.cpus},
            }
        )
    events = [
        {
            "ts": round(e.ts, 6),
            "cpu": e.cpu,
            "reason": e.name,
            "subsystem": e.subsystem,
            "location": e.symbol,
            "protocol": protocol_name(e.protocol),
            "device": e.ifname,
            "netns": e.netns,
            "l4proto": e.l4proto,
            "saddr": e.saddr,
            "daddr": e.daddr,
            "sport": e.sport,
            "dport": e.dport,
        }
        for e in drops.events[
            :: max(1, -(-len(drops.events) // EVENTS_PER_INTERVAL))
        ]  # spread over the interval
    ]
    return {
        "drops": reasons,
        "drop_log": {
            "logged": drops.logged,
            "suppressed": drops.suppressed,
            "lost": drops.lost,
            "unbucketed": drops.unbucketed,
            "rate_limit": drops.log_rate,
            "events": events,
        },
    }
