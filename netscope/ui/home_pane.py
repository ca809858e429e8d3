"""The home screen: the receive path drawn live, left to right, each stage with its rate and losses,
the bottleneck in red; below it one line per pane. A click on a stage or a line opens its pane."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Click, Resize
from textual.visual import visualize
from textual.widgets import Sparkline, Static

from netscope.model.pipeline import Stage, build_pipeline
from netscope.model.sample import ProbeState
from netscope.model.timeline import HISTORY, ViewModel
from netscope.panes import BY_ID, PANES
from netscope.ui.findings import FindingsStrip
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns, fmt_pct
from netscope.ui.pane import Pane, ShowPane
from netscope.ui.widgets import estimated, lines_of, show_text

COMPACT_BELOW = 110  # columns of the home pane under which stages are drawn as lines
STICKY_SHOWS = 60  # a stage box keeps its tallest height of this many intervals
HISTORY_LABEL = f"{HISTORY // 60} minutes"  # at the default 1-s interval


def stage_text(stage: Stage) -> Text:
    text = Text()
    text.append(stage.name + "\n", style="bold red" if stage.bottleneck else "bold")
    return stage_figures(text, stage, "\n", "")


def stage_figures(text: Text, stage: Stage, flow_sep: str, indent: str) -> Text:
    """`text` and a stage's figures: its rate, its balance (in → out after `flow_sep`; what no
    counter names in red), each loss on a line of its own (`indent`ed), the bottleneck mark."""
    text.append(f"{fmt_count(stage.rate)} {stage.unit}" if stage.rate is not None else NO_DATA)
    if stage.flow is not None:
        flow = stage.flow
        mark = "~" if flow.estimated else ""
        text.append(
            f"{flow_sep}{mark}{fmt_count(flow.in_per_s)} → {mark}{fmt_count(flow.out_per_s)}", style="dim"
        )
        if flow.silent_per_s:
            text.append(f"\n{indent}? {fmt_count(flow.silent_per_s)}/s silent", style="bold red")
    for what, per_s in stage.losses:
        text.append(f"\n{indent}✗ {fmt_count(per_s)}/s {what}", style="red" if stage.bottleneck else "yellow")
    if stage.bottleneck:
        text.append(" ◀ bottleneck" if indent else "\n◀ bottleneck", style="bold red")
    return text


def stage_line(stage: Stage) -> Text:
    """One stage on one line, for terminals too narrow for the boxes: rate, bottleneck, losses."""
    name = stage.name.split(" (")[0]
    text = Text(f"{name:<15}", style="bold red" if stage.bottleneck else "bold")
    rate = f"{fmt_count(stage.rate)} {stage.unit}" if stage.rate is not None else NO_DATA
    text.append(f"{rate:<18}")
    if stage.bottleneck:
        text.append(" ◀ bottleneck", style="bold red")
    if stage.flow is not None and stage.flow.silent_per_s:
        text.append(f"  ? {fmt_count(stage.flow.silent_per_s)}/s silent loss", style="bold red")
    for what, per_s in stage.losses:
        text.append(f"  ✗ {fmt_count(per_s)}/s {what}", style="red" if stage.bottleneck else "yellow")
    return text


class StageBox(Static):
    """A stage of the path: a box in the wide layout, a line in the compact one. A click opens it."""

    def __init__(self, index: int, compact: bool = False) -> None:
        super().__init__(
            id=f"stage-line-{index}" if compact else f"stage-{index}",
            classes="stage-line" if compact else "stage",
        )
        self.compact = compact
        self.pane = "cpus"
        self._heights: deque[int] = deque(maxlen=STICKY_SHOWS)

    def show(self, stage: Stage) -> None:
        self.pane = stage.key
        self.set_class(stage.bottleneck, "bottleneck")
        show_text(self, stage_line(stage) if self.compact else self._sticky(stage_text(stage)))

    def _sticky(self, text: Text) -> Text:
        """`text` padded to the box's tallest of its last STICKY_SHOWS: a box whose losses come and
        go each second moved everything below it (and laid the whole screen out again) each time."""
        width = self.content_size.width
        if not width:
            return text
        height = lines_of(self, visualize(self, text, markup=False), width)
        self._heights.append(height)
        return Text.assemble(text, "\n" * (max(self._heights) - height))

    def on_click(self, event: Click) -> None:
        self.post_message(ShowPane(self.pane))


def tx_text(stages: Sequence[Stage]) -> Text:
    """The way out in one box, a stage a line (name, rate, in → out where the counters balance
    it), each loss under its stage, the bottleneck in red."""
    text = Text()
    for i, stage in enumerate(stages):
        name = f"{'' if not i else chr(10)}{stage.name:<12}"
        stage_figures(text.append(name, style="bold red" if stage.bottleneck else "bold"), stage, "  ", "  ")
    return text


def tx_line_text(stages: Sequence[Stage]) -> Text:
    """The way out on one line, for the compact layout: each stage's rate, then its losses."""
    text = Text(f"{'TX':<15}", style="bold")
    for i, stage in enumerate(stages):
        text.append(" → " if i else "", style="dim")
        text.append(stage.name, style="bold red" if stage.bottleneck else "")
        text.append(f" {fmt_count(stage.rate)}" if stage.rate is not None else f" {NO_DATA}")
    for stage in stages:
        for what, per_s in stage.losses:
            text.append(f"  ✗ {fmt_count(per_s)}/s {what}", style="red" if stage.bottleneck else "yellow")
    return text


class TxBox(StageBox):
    """The transmit path's stages in one box beside the trends (three more boxes in a row took
    the height the pane lines need on a 40-line terminal), or on one line in the compact layout."""

    def __init__(self, compact: bool = False) -> None:
        super().__init__(HomePane.RX_STAGES, compact)
        self.pane = "tx"
        if not compact:
            self.border_title = "TX: socket send → qdisc → driver"

    def show_stages(self, stages: Sequence[Stage]) -> None:
        self.set_class(any(s.bottleneck for s in stages), "bottleneck")
        show_text(self, tx_line_text(stages) if self.compact else self._sticky(tx_text(stages)))


class StageTrend(Horizontal):
    """One stage's last minutes: its rate and its losses (Textual's Sparkline), and the range."""

    def __init__(self, index: int) -> None:
        super().__init__(id=f"trend-{index}", classes="trend")
        self.index = index

    def compose(self) -> ComposeResult:
        yield Static(classes="trend-name")
        yield Sparkline([], classes="trend-rate")
        yield Static(classes="trend-figure")
        yield Sparkline([], classes="trend-lost")
        yield Static(classes="trend-figure")

    def on_mount(self) -> None:
        self._stage_name, self._rate_peak, self._lost_peak = self.query(Static).results(Static)
        self._rate = self.query_one(".trend-rate", Sparkline)
        self._lost = self.query_one(".trend-lost", Sparkline)

    def show(self, history: tuple[tuple[Stage, ...], ...]) -> None:
        stages = [s[self.index] for s in history if len(s) > self.index]
        if not stages:
            return
        rates = [s.rate or 0.0 for s in stages]
        lost = [s.lost_per_s + (s.flow.silent_per_s if s.flow else 0.0) for s in stages]
        show_text(self._stage_name, Text(stages[-1].name.split(" (")[0], style="bold"))
        self._rate.data = rates
        self._lost.data = lost
        show_text(self._rate_peak, Text(f"max {fmt_count(max(rates))}", style="dim"))
        lost_style = "red" if any(lost) else "dim"
        show_text(self._lost_peak, Text(f"lost max {fmt_count(max(lost))}/s", style=lost_style))


class PaneLine(Static):
    def __init__(self, pane: str) -> None:
        super().__init__(id=f"home-{pane}", classes="pane-line")
        self.pane = pane

    def on_click(self, event: Click) -> None:
        self.post_message(ShowPane(self.pane))


def pane_lines(shown: ViewModel) -> dict[str, Text]:
    """One line per pane, its headline figures."""
    lines: dict[str, Text] = {}
    rings = shown.rings
    busiest = rings.devices[0] if rings and rings.devices else None
    t = Text("Rings    ", style="bold")
    if busiest is not None:
        t.append(
            f"{busiest.label}: RX {fmt_count(busiest.rx_pps)} pkt/s, TX {fmt_count(busiest.tx_pps)} pkt/s, "
        )
        lost = busiest.lost_per_interval / rings.interval_s if rings else 0.0
        t.append(f"lost before the stack {fmt_count(lost)}/s", style="red" if lost else "")
        full = busiest.pressure.full_pct
        if full is not None:
            t.append(f", ring pressure {estimated(fmt_pct(full), busiest.pressure.rate)}%")
    lines["rings"] = t
    t = Text("CPUs     ", style="bold")
    view = shown.cpu_history[-1] if shown.cpu_history else None
    for row in view.rows if view else ():
        t.append(f"CPU{row.cpu} NET_RX {fmt_count(row.net_rx_runs_per_s)}/s ")
        t.append(f"sirq {fmt_pct(row.softirq_time_pct)}%  ")
    lines["cpus"] = t
    t = Text("Drops    ", style="bold")
    drops = shown.drops
    if drops is not None:
        t.append(f"{fmt_count(drops.total_per_s)}/s  ")
        t.append("  ".join(f"{r.label} {fmt_count(r.per_s)}/s" for r in drops.rows[:3]) or "none")
    lines["drops"] = t
    t = Text("Latency  ", style="bold")
    latency = shown.latency
    if latency is not None:
        t.append(f"all readers p50 {fmt_ns(latency.all.p50_ns)} p99 {fmt_ns(latency.all.p99_ns)}")
        if latency.processes:
            slow = latency.processes[0]
            t.append(f"  slowest: {slow.pid} {slow.comm} p99 {fmt_ns(slow.stats.p99_ns)}")
    lines["latency"] = t
    t = Text("Flows    ", style="bold")
    flows = shown.flows
    if flows is not None:
        t.append(f"{flows.flow_count} flows")
        if flows.rows:
            t.append(f", busiest {flows.rows[0].label} {fmt_count(flows.rows[0].rx_pps)} pkt/s")
    elif any(p.name == "flows" and p.state == ProbeState.IDLE for p in shown.latest.probes):
        t.append("per-flow tracking is attached while Flows or a drill-down is open (t)", style="dim")
    lines["flows"] = t
    t = Text("Processes", style="bold")
    processes = shown.processes
    if processes is not None and processes.rows:
        top = processes.rows[0]
        t.append(
            f" {len(processes.rows)} with socket traffic, busiest {top.pid} {top.comm}: "
            f"in {fmt_bytes(top.bytes_per_s)}/s, out {fmt_bytes(top.tx_bytes_per_s)}/s"
        )
    lines["processes"] = t
    lines["tx"] = tx_line(shown)
    lines["cost"] = cost_line(shown)
    return lines


def tx_line(shown: ViewModel) -> Text:
    """The busiest device on the way out: its rate, root qdisc and what it holds, its losses."""
    t = Text("TX       ", style="bold")
    tx = shown.tx
    busiest = tx.devices[0] if tx.devices else None
    if busiest is None:
        return t
    t.append(f"{busiest.label}: {fmt_count(busiest.tx_pps)} pkt/s, qdisc {busiest.root_kind or NO_DATA}")
    packets, nbytes = busiest.queued
    if packets:
        t.append(f" holding {packets}p {fmt_bytes(nbytes)}")
    lost = tx.per_s(tx.qdisc_drops + tx.tx_dropped)
    t.append(f", qdisc drops + tx_dropped {fmt_count(lost)}/s", style="red" if lost else "")
    full = sum(q.bql_full for d in tx.devices for q in d.queues)
    if full:
        t.append(f", {full} TX queues stopped by BQL", style="yellow")
    return t


def cost_line(shown: ViewModel) -> Text:
    """What netscope itself costs: its CPU and memory, and its BPF programs' runs and time."""
    t = Text("netscope ", style="bold")
    cost = shown.latest.cost
    if cost is None:
        t.append("(replay: the recording's own cost is not shown)", style="dim")
        return t
    dt = cost.measured_interval_s or shown.latest.interval_s
    runs = sum(p.runs for p in cost.programs)
    t.append(f"CPU {fmt_pct(cost.cpu_pct)}%  RSS {cost.rss_bytes / 1e6:.0f} MB  ")
    if cost.map_bytes:
        t.append(f"BPF maps {cost.map_bytes / 1e6:.1f} MB  ")
    t.append(f"{len(cost.programs)} BPF programs: {fmt_count(runs / dt)} runs/s")
    share = cost.bpf_cpu_share(dt)
    if share is not None and runs:
        t.append(f", {cost.bpf_ns() / runs:.0f} ns/run, {fmt_pct(100.0 * share)}% of a CPU")
        if cost.measured_age_s >= 1.0:
            t.append(f" (measured {cost.measured_age_s:.0f}s ago)", style="dim")
    elif not cost.bpf_stats:
        t.append(" (not measured yet: kernel.bpf_stats_enabled is off)", style="dim")
    lost = sum(p.lost_events for p in shown.latest.probes)
    t.append(f"  events lost {lost:,}", style="red" if lost else "")
    misses = sum(p.recursion_misses for p in shown.latest.probes)
    if misses:
        t.append(f"  recursion misses {misses:,}", style="red")
    return t


class HomePane(Pane, Vertical):
    SPEC = BY_ID["home"]
    RX_STAGES, TX_STAGES = 6, 3
    STAGES = RX_STAGES + TX_STAGES

    def __init__(self) -> None:
        super().__init__(id="home-pane")
        self.border_title = "Receive path, then the way out"

    def compose(self) -> ComposeResult:
        with Horizontal(id="pipeline"):
            for i in range(self.RX_STAGES):  # RX, left to right
                if i:
                    yield Static("→", classes="arrow")
                yield StageBox(i)
        # TX, and beside it each stage's last minutes: what the rows below leave of the height
        # (the trends are hidden in the compact layout, and cut before anything else is).
        with Horizontal(id="home-lower"):
            yield TxBox()
            with Vertical(id="trends"):
                yield Static(Text(f"the last {HISTORY_LABEL}: rate, then losses", style="dim"))
                for i in range(self.STAGES):
                    yield StageTrend(i)
        with Vertical(id="pipeline-lines"):  # the compact layout: one line per stage, TX's on one
            for i in range(self.RX_STAGES):
                yield StageBox(i, compact=True)
            yield TxBox(compact=True)
        yield FindingsStrip()
        for spec in PANES[1:]:
            yield PaneLine(spec.id)
        yield Static(id="home-cost", classes="pane-line")
        yield Static(Text("click a stage or a line, or press its key, for the full view", style="dim"))

    def on_mount(self) -> None:
        self._boxes = [self.query_one(f"#stage-{i}", StageBox) for i in range(self.RX_STAGES)]
        self._tx = self.query_one(f"#stage-{self.RX_STAGES}", TxBox)
        self._tx_line = self.query_one(f"#stage-line-{self.RX_STAGES}", TxBox)
        self._lines = [self.query_one(f"#stage-line-{i}", StageBox) for i in range(self.RX_STAGES)]
        self._trends = list(self.query(StageTrend).results(StageTrend))
        self._pane_lines = {spec.id: self.query_one(f"#home-{spec.id}", Static) for spec in PANES[1:]}
        self._pane_lines["cost"] = self.query_one("#home-cost", Static)
        self._findings = self.query_one(FindingsStrip)
        self._last: ViewModel | None = None

    def on_resize(self, event: Resize) -> None:
        """Below COMPACT_BELOW columns the boxes would break words: one line per stage instead."""
        compact = event.size.width < COMPACT_BELOW
        if compact != self.has_class("compact"):
            self.set_class(compact, "compact")
            if self._last is not None:  # the layout now shown was not drawn
                self.show(self._last)

    def show(self, shown: ViewModel) -> None:
        """Only the layout on screen is drawn (boxes and trends, or one line per stage)."""
        self._last = shown
        compact = self.has_class("compact")
        stages = build_pipeline(shown)
        for box, stage in zip(self._lines if compact else self._boxes, stages, strict=False):
            box.show(stage)
        (self._tx_line if compact else self._tx).show_stages(stages[self.RX_STAGES :])
        if not compact:
            for trend in self._trends:
                trend.show(shown.stage_history)
        for pane, text in pane_lines(shown).items():
            show_text(self._pane_lines[pane], text)
        self._findings.show(shown.findings)
