"""What the UI shows, built from the stream of samples: trends, the drop log, running totals.

Pure. The app feeds every sample in (also while paused) and renders a `ViewModel` snapshot; pausing
just keeps rendering the snapshot taken when the pause began.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TypeVar

from netscope.model.balance import BalanceLedger, StageBalance
from netscope.model.cpu import CpuView, build_cpu_view
from netscope.model.drops import DropsView, DropTotals, SnmpRow, build_drops_view, device_label, snmp_rows
from netscope.model.filter import Filter, Scope
from netscope.model.findings import ActiveFinding, FindingsTracker, find
from netscope.model.flows import FLOWS_TOP, FlowsView, build_flows_view
from netscope.model.latency import LatencyView, latency_view
from netscope.model.pipeline import Stage, build_stages
from netscope.model.processes import ProcessesView, build_processes_view
from netscope.model.rings import RingsView, build_rings_view
from netscope.model.sample import (
    DropEvent,
    FlowCount,
    FlowEvent,
    FlowsOther,
    HostInfo,
    ProbeState,
    Sample,
    rate_of,
)
from netscope.model.scope import scoped
from netscope.model.tx import TxView, build_tx_view

HISTORY = 240  # views kept for trends: 4 minutes at 1 s
PAST_FLOWS = 50  # a view kept to look back at holds its busiest flows; the rest are summed
PAST_EVENTS = 20  # ... and the newest of its logged drops and of the watched flow's packets
DROP_LOG_KEPT = 1000  # logged drops kept for the log and the reason screens
FLOW_EVENTS_KEPT = 200  # packets of the watched flow kept for its screen


@dataclass(frozen=True)
class ViewModel:
    """What the UI renders for one moment: the views of the newest interval and their histories,
    built from the samples by the model; a pane takes its own part (`Pane.show`)."""

    info: HostInfo
    latest: Sample
    cpu_history: tuple[CpuView, ...]  # oldest first
    drops_history: tuple[DropsView, ...]  # oldest first
    drop_events: tuple[DropEvent, ...]  # newest first
    drop_totals: DropTotals
    snmp: tuple[SnmpRow, ...]  # loss counters of /proc/net/snmp that counted since start
    netns_names: dict[int, str]  # every namespace named so far (events outlive their sample)
    rings: RingsView
    latency_history: tuple[LatencyView, ...]  # oldest first
    flows: FlowsView | None
    flow_events: tuple[FlowEvent, ...]  # packets of the watched flow, newest first
    watched: tuple[int, int, str, int, str, int] | None
    findings: tuple[ActiveFinding, ...]  # worst first
    stage_history: tuple[tuple[Stage, ...], ...] = ()  # the receive path per interval, oldest first
    balance: tuple[StageBalance, ...] = ()  # the newest interval's stage balance
    # Probes that came live after the timeline's first interval, and since when (their figures
    # start there; the counters' history is older): probe name -> the ts of its first live interval.
    hooks_since: tuple[tuple[str, float], ...] = ()
    processes: ProcessesView | None = None  # the newest interval's readers (None: no copy-latency report)
    # The newest sample narrowed to the filter's processes (model/scope.py); None: no scope.
    latest_scoped: Sample | None = None

    @cached_property
    def tx(self) -> TxView:
        """The newest interval's way out, built when a view asks (kept with each past view, it
        would hold every device's qdiscs ten minutes over)."""
        return build_tx_view(self.latest, self.rings)

    @property
    def mine(self) -> Sample:
        """The newest sample as the views of processes see it: narrowed to the scope, if any."""
        return self.latest_scoped or self.latest

    @property
    def latency(self) -> LatencyView | None:
        return self.latency_history[-1] if self.latency_history else None

    @property
    def drops(self) -> DropsView | None:
        return self.drops_history[-1] if self.drops_history else None

    @property
    def interval_latency(self) -> LatencyView | None:
        """The newest interval's copy latency: None when the probe did not report in it (the
        latency view above stays the last one reported)."""
        return self.latency if self.latest.latency is not None else None

    @property
    def interval_drops(self) -> DropsView | None:
        """The newest interval's drops by reason (None when the drops probe did not report in it);
        its logged drops are the sample's, not the view's (the history keeps none)."""
        return self.drops if self.latest.drops is not None else None

    def device(self, ifname: str, netns: int) -> str:
        return device_label(ifname, netns, self.info.netns, self.netns_names)


class Timeline:
    def __init__(
        self,
        info: HostInfo,
        interfaces: Collection[str] = (),
        netns: str | None = None,
        flow_filter: Filter | None = None,
        flows_top: int | None = FLOWS_TOP,
    ) -> None:
        """`interfaces` and `netns` narrow the Rings view (--interface, --netns); `flow_filter` the
        flows (--filter, or `/` in the TUI); `flows_top` is how many flows a view lists (--top)."""
        self.flow_filter = flow_filter
        self.flows_top = flows_top
        self.info = info
        self.interfaces = tuple(interfaces)
        self.netns = netns
        self._cpu: deque[CpuView] = deque(maxlen=HISTORY)
        self._drops: deque[DropsView] = deque(maxlen=HISTORY)
        self._events: deque[DropEvent] = deque(maxlen=DROP_LOG_KEPT)
        self._totals = DropTotals()
        self._snmp_totals: dict[tuple[str, str], int] = {}
        self._latest: Sample | None = None
        self._latest_mine: Sample | None = None  # narrowed to the scope
        # The newest drops and copy latency of the whole box (the stages'), as last reported.
        self._whole: tuple[DropsView | None, LatencyView | None] = (None, None)
        self._netns_names: dict[int, str] = {}
        self._latency: deque[LatencyView] = deque(maxlen=HISTORY)
        self._flow_events: deque[FlowEvent] = deque(maxlen=FLOW_EVENTS_KEPT)
        self._watched: tuple[int, int, str, int, str, int] | None = None
        self._tracker = FindingsTracker()
        self._stages: deque[tuple[Stage, ...]] = deque(maxlen=HISTORY)
        self._ledger = BalanceLedger()
        self._balance: tuple[StageBalance, ...] = ()  # the newest interval's
        self._rings: RingsView | None = None  # the newest interval's
        self._processes: ProcessesView | None = None  # the newest interval's
        self._live_since: dict[str, float] = {}  # each live probe's first interval of this run of it
        self._first_ts: float | None = None

    @property
    def scope(self) -> Scope:
        return self.flow_filter.scope if self.flow_filter else Scope()

    def add(self, sample: Sample) -> None:
        """One interval into the views: those of processes (copy latency, drops at sockets, flows,
        processes) narrowed to the filter's scope; the receive path's stages, the balance and the
        findings the whole box's, whatever the scope."""
        self._latest = sample
        mine = scoped(sample, self.scope)
        self._latest_mine = mine
        if self._first_ts is None:
            self._first_ts = sample.ts
        live = {p.name for p in sample.probes if p.state == ProbeState.LIVE}
        self._live_since = {name: self._live_since.get(name, sample.ts) for name in live}
        self._netns_names.update(sample.netns_names)
        latency, self._processes, drops = process_views(mine, self.info)
        if latency is not None:
            self._latency.append(latency)
        if sample.flows is not None:
            if sample.flows.watched != self._watched:  # another flow now: its own events only
                self._flow_events.clear()
                self._watched = sample.flows.watched
            self._flow_events.extendleft(sample.flows.events)
        cpu = build_cpu_view(sample, self.info.cpus)
        self._cpu.append(cpu)
        self._balance, silent = self._ledger.add(sample)
        self._tracker.update(sample.ts, find(self.info, sample, cpu, silent))
        for c in sample.snmp:
            key = (c.group, c.name)
            self._snmp_totals[key] = self._snmp_totals.get(key, 0) + c.count
        if drops is not None and mine.drops is not None:
            # The history keeps rates, not each interval's logged drops (1000/s by default, 240k
            # objects over the window): those live once, in the bounded log below.
            self._drops.append(replace(drops, events=()))
            self._events.extendleft(mine.drops.events)
            self._totals = self._totals.add(mine.drops)
        self._rings = build_rings_view(sample, self.info, self.interfaces, self.netns)
        if mine is not sample:  # the stages: the whole box's
            drops, latency = build_drops_view(sample, self.info), latency_view(sample)
        self._whole = (
            drops if drops is not None else self._whole[0],
            latency if latency is not None else self._whole[1],
        )
        self._stages.append(
            build_stages(
                sample,
                cpu,
                self._rings,
                *self._whole,
                self._balance,
                silent,
                build_tx_view(sample, self._rings),
            )
        )

    def shown(self) -> ViewModel | None:
        if self._latest is None or self._rings is None:
            return None
        return ViewModel(
            self.info,
            self._latest,
            tuple(self._cpu),
            tuple(self._drops),
            tuple(self._events),
            self._totals,
            snmp_rows(self._snmp_totals, self._latest),
            dict(self._netns_names),
            self._rings,  # built once, with the interval
            tuple(self._latency),
            build_flows_view(
                self._latest_mine or self._latest, self.info, self._flows_filter, self.flows_top
            ),
            tuple(self._flow_events),
            self._watched,
            self._tracker.active,
            tuple(self._stages),
            self._balance,
            tuple(sorted((n, ts) for n, ts in self._live_since.items() if ts != self._first_ts)),
            self._processes,
            self._latest_mine if self._latest_mine is not self._latest else None,
        )

    def filtered_anew(self, view: ViewModel) -> ViewModel:
        """`view` (frozen: paused, or looking back) under the filter now in force: its flows, and
        its newest views of processes narrowed to the scope now."""
        mine = scoped(view.latest, self.scope)
        latency, processes, drops = process_views(mine, self.info)
        return replace(
            view,
            flows=build_flows_view(mine, self.info, self._flows_filter, self.flows_top),
            processes=processes,
            latency_history=_newest(view.latency_history, latency),
            drops_history=_newest(view.drops_history, replace(drops, events=()) if drops else None),
            latest_scoped=mine if mine is not view.latest else None,
        )

    @property
    def _flows_filter(self) -> Filter | None:
        return self.flow_filter.flows if self.flow_filter else None


def process_views(
    sample: Sample, info: HostInfo
) -> tuple[LatencyView | None, ProcessesView | None, DropsView | None]:
    """The views of processes of an interval (copy latency, processes, drops), as narrowed."""
    latency = latency_view(sample)
    processes = (
        build_processes_view(
            latency,
            sample.processes,
            sample.drops,
            sample.socket_pids,
            sample.interval_s,
            sample.sends or (),
            rate_of(sample, "send"),
            sample.cgroups,
            dict(sample.container_names),
        )
        if latency is not None or sample.drops is not None or sample.sends is not None
        else None
    )
    return latency, processes, build_drops_view(sample, info)


T = TypeVar("T")


def _newest(history: tuple[T, ...], view: T | None) -> tuple[T, ...]:
    """`history` with its newest view replaced by `view` (kept when None)."""
    return (*history[:-1], view) if history and view is not None else history


def past_view(view: ViewModel, top: int = PAST_FLOWS) -> ViewModel:
    """`view` as it is kept to look back at (10 minutes of them): its counters and views, its flows
    as their busiest `top` (the rest summed into `others`, in the view and in its sample), and the
    newest PAST_EVENTS of its logged drops and of the watched flow's packets. Each interval logs up
    to a thousand drops: kept in full, ten minutes of views held 600k of them (0.5 MB a view)."""
    flows, sample_flows = view.flows, view.latest.flows
    drops = view.latest.drops
    if flows is not None and len(flows.rows) > top:
        kept = flows.rows[:top]
        flows = replace(
            flows,
            rows=kept,
            others=summed_into(flows.others, [r.flow for r in flows.rows[top:]]),
            orders={name: tuple(r for r in rows if r in kept) for name, rows in flows.orders.items()},
        )
    if sample_flows is not None and len(sample_flows.flows) > top:
        busiest = sorted(sample_flows.flows, key=lambda f: -f.rx_packets)
        sample_flows = replace(
            sample_flows, flows=tuple(busiest[:top]), rest=summed_into(sample_flows.rest, busiest[top:])
        )
    if sample_flows is not None and sample_flows.events:
        sample_flows = replace(sample_flows, events=())  # the view's flow_events hold them
    if drops is not None and drops.events:
        drops = replace(drops, events=())  # the view's drop_events hold them
    return replace(
        view,
        flows=flows,
        latest=replace(view.latest, flows=sample_flows, drops=drops),
        latest_scoped=None,  # (its views are narrowed already)
        drop_events=view.drop_events[:PAST_EVENTS],
        flow_events=view.flow_events[:PAST_EVENTS],
    )


def summed_into(others: FlowsOther, flows: list[FlowCount]) -> FlowsOther:
    drops: dict[str, int] = dict(others.drops)
    for f in flows:
        for reason, n in f.drops:
            drops[reason] = drops.get(reason, 0) + n
    return FlowsOther(
        others.flows + len(flows),
        others.rx_packets + sum(f.rx_packets for f in flows),
        others.rx_bytes + sum(f.rx_bytes for f in flows),
        tuple(sorted(drops.items(), key=lambda kv: -kv[1])),
    )
