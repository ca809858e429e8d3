"""One flow's path through the receive stages, live (Enter on a flow): its device, queue, CPUs,
NAPI, rate, drops and reader, and its packets one by one while the screen is open."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.flows import FlowRow, FlowsView
from netscope.model.latency import SOCK_BITS, octave_bar
from netscope.model.sample import TcpConn
from netscope.model.tcp import IPPROTO_TCP, TcpPath
from netscope.model.timeline import ViewModel
from netscope.sources import Source
from netscope.ui.drill import DrillScreen
from netscope.ui.format import NO_DATA, fmt_bytes, fmt_count, fmt_ns, fmt_pct, histogram_bar
from netscope.ui.key_bar import KeyBar
from netscope.ui.widgets import TrendLine, fixed_table, show_text

EVENT_COLUMNS = (("time", 15), ("what", 28), ("CPU", 5), ("queue", 6), ("bytes", 6), ("where", 32))
EVENTS_SHOWN = 100


def tcp_end(conn: TcpConn | None, dt: float, role: str) -> Text:
    """One end of a TCP connection on two lines: its state at the last sampled segment, then its
    events per second."""
    text = Text(f"  {role:<9}", style="bold")
    if conn is None:
        return text.append("not on this box, or nothing sampled from it in the interval\n", style="dim")
    text.append(f"{conn.laddr}:{conn.lport:<8}")
    if conn.srtt_us is not None:
        text.append(f"srtt {fmt_ns(conn.srtt_us * 1000.0)}  cwnd {conn.snd_cwnd}  ")
        text.append(f"window in {fmt_bytes(conn.rcv_wnd)} out {fmt_bytes(conn.snd_wnd)}  ")
        text.append(f"rcvbuf {fmt_bytes(conn.rcvbuf)} (clamp {fmt_bytes(conn.window_clamp)})")
    else:
        text.append("no segment sampled", style="dim")
    events = [
        (f"{what} {fmt_count(n / dt)}/s", "red" if bad else "")
        for what, n, bad in (
            ("retransmits", conn.retransmits, True),
            ("RST sent", conn.resets_sent, True),
            ("RST received", conn.resets_received, True),
            ("zero windows", conn.zero_rcv_wnd + conn.zero_snd_wnd, True),
            ("buffer autotuning", conn.rcv_space_adjust, False),
            ("over tcp_mem", conn.exceed_buf, True),
        )
        if n
    ]
    text.append("\n" + " " * 11)
    for event, style in events or [("no retransmit, reset or zero window", "dim")]:
        text.append(f"{event}  ", style=style)
    return text.append("\n")


def tcp_text(path: TcpPath | None, dt: float) -> Text:
    """A TCP flow both ways: the socket receiving it here, and its sender where it is here too."""
    text = Text(
        "\nTCP, both ends (tcp:tcp_probe sampled; retransmits, resets, autotuning counted)\n", style="bold"
    )
    text.append_text(tcp_end(path.local if path else None, dt, "receiver"))
    return text.append_text(tcp_end(path.peer if path else None, dt, "sender"))


def matching(row: FlowRow, view: FlowsView | None) -> FlowRow | None:
    """The same flow in a newer view."""
    f = row.flow
    ident = (f.netns, f.proto, f.saddr, f.sport, f.daddr, f.dport)
    for r in view.rows if view else ():
        g = r.flow
        if (g.netns, g.proto, g.saddr, g.sport, g.daddr, g.dport) == ident:
            return r
    return None


class FlowScreen(DrillScreen):
    """One flow's path through the receive stages, live. Esc: back."""

    PROBES = ("flows", "latency", "napi", "tcp")  # attached while this screen is open

    def __init__(self, row: FlowRow, trail: str, shown: ViewModel) -> None:
        super().__init__()
        self.row = row
        self.trail = trail
        self._initial = shown
        self._rates: dict[float, float] = {}  # the flow's packets/s per interval shown, by its time

    def filter_text(self) -> str | None:
        return self.row.expression  # this flow alone: `/` edits from there

    def compose(self) -> ComposeResult:
        with Vertical(id="flow-box"):
            yield Static(id="flow-crumbs")
            yield Static(id="flow-path")
            yield TrendLine("its packets/s since this screen opened", fmt_count, id="flow-trend")
            yield Static(Text("Its packets, one by one (newest first)", style="bold"), id="flow-events-title")
            yield fixed_table("flow-events", EVENT_COLUMNS)
        yield KeyBar()

    @property
    def key(self) -> tuple[int, int, str, int, str, int]:
        f = self.row.flow
        return (f.netns, f.proto, f.saddr, f.sport, f.daddr, f.dport)

    def on_mount(self) -> None:
        # Only this flow's packets go to user space one by one, and only while this screen is open.
        self.app_source().watch_flow(self.key)
        self.update_view(self._initial)

    def on_unmount(self) -> None:
        self.app_source().watch_flow(None)

    def app_source(self) -> Source:
        source: Source = getattr(self.app, "source")  # noqa: B009 (NetscopeApp, imported lazily)
        return source

    def update_view(self, shown: ViewModel) -> None:
        row = matching(self.row, shown.flows) or self.row
        live = matching(self.row, shown.flows) is not None
        self._rates[shown.latest.ts] = row.rx_pps if live else 0.0
        self.query_one("#flow-trend", TrendLine).show([self._rates[t] for t in sorted(self._rates)])
        f = row.flow
        dt = shown.latest.interval_s
        self.query_one("#flow-crumbs", Static).update(
            Text(f"{self.trail} › {row.label}" + (f" @{row.netns}" if row.netns else ""), style="bold")
        )
        path = Text()
        if not live:
            path.append("no packets of this flow in the last interval: last figures shown\n\n", style="dim")
        device = next((d for d in shown.rings.devices if (d.netns, d.ifindex) == (f.netns, f.ifindex)), None)
        napi = (
            ", ".join(
                f"napi {n.napi_id}: {fmt_pct(n.pressure.full_pct)}% full-budget polls" for n in device.napi
            )
            or "the CPU's backlog (no NAPI instance of its own)"
            if device is not None
            else NO_DATA
        )
        if row.pid is None:
            reader = "no reader seen copying this flow"
        elif row.owner_only:
            reader = f"{row.pid} {row.comm} owns the socket (psutil) but has not read in this interval"
        else:
            reader = (
                f"{row.pid} {row.comm}: copied {fmt_bytes((row.copied_bytes or 0) / dt)}/s, "
                f"waited p50 {fmt_ns(row.copy_p50_ns)}, p99 {fmt_ns(row.copy_p99_ns)}  "
                f"1µs {histogram_bar(octave_bar(row.copy_hist, SOCK_BITS))} 17s"
            )
        stages = (
            ("device", device.label if device else NO_DATA),
            ("queue", ", ".join("rx-?" if q < 0 else f"rx-{q}" for q in f.queues) or NO_DATA),
            ("CPU (IRQ, NAPI, softirq)", ", ".join(f"CPU{c}" for c in f.cpus) or NO_DATA),
            ("NAPI", napi),
            ("received", f"{fmt_count(row.rx_pps)} pkt/s, {fmt_bytes(row.rx_bps)}/s"),
            ("dropped", ", ".join(f"{reason} {fmt_count(n / dt)}/s" for reason, n in f.drops) or "none"),
            ("socket → reader", reader),
        )
        for i, (stage, value) in enumerate(stages):
            path.append(f"{'↓ ' if i else '  '}{stage:<26}", style="bold")
            path.append(f"{value}\n")
        if f.proto == IPPROTO_TCP:
            path.append_text(tcp_text(row.tcp, dt))
        if f.first_seen:
            first = datetime.fromtimestamp(f.first_seen).strftime("%H:%M:%S")
            last = datetime.fromtimestamp(f.last_seen).strftime("%H:%M:%S")
            path.append(f"\nfirst seen {first}, last seen {last}", style="dim")
        show_text(self.query_one("#flow-path", Static), path)
        table: DataTable[str | Text] = self.query_one("#flow-events", DataTable)
        table.clear()
        streaming = shown.watched == self.key
        title = Text("Its packets, one by one (newest first)", style="bold")
        if not streaming:
            title.append(
                "  starting…"
                if self.app_source().live
                else "  a recording holds only the flows watched while it was made",
                style="dim",
            )
        skipped = shown.latest.flows.events_skipped if shown.latest.flows else 0
        if streaming and skipped:
            title.append(f"  (a sample: {fmt_count(skipped)} more this interval not listed)", style="dim")
        self.query_one("#flow-events-title", Static).update(title)
        if streaming:
            for e in shown.flow_events[:EVENTS_SHOWN]:
                when = datetime.fromtimestamp(e.ts)
                table.add_row(
                    when.strftime("%H:%M:%S.") + f"{when.microsecond:06d}",
                    Text("dropped: " + e.reason, style="red") if e.reason else "received",
                    f"CPU{e.cpu}",
                    "rx-?" if e.queue < 0 else f"rx-{e.queue}",
                    Text(str(e.length), justify="right"),
                    e.symbol or NO_DATA,
                )
