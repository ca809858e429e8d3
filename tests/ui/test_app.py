"""The TUI over a recording: the CPU pane renders the model's numbers, keys work."""

from __future__ import annotations

import gc
import re
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Sparkline, Static, TabbedContent

from netscope.app import GC_EVERY_S, NetscopeApp, make_app
from netscope.model.cpu import build_cpu_view
from netscope.model.drops import build_drops_view
from netscope.model.filter import Filter
from netscope.model.pipeline import build_pipeline
from netscope.model.sample import ProbeState, ProbeStatus, Sample
from netscope.model.timeline import Timeline
from netscope.sources.recording import Recording, read_recording
from netscope.sources.replay import ReplaySource
from netscope.ui.cpu_pane import CpuPane
from netscope.ui.cpu_screen import CpuScreen
from netscope.ui.device import DeviceScreen
from netscope.ui.drop_reason import DropReasonScreen
from netscope.ui.drops_pane import DropsPane
from netscope.ui.filter_input import FilterScreen
from netscope.ui.findings import FindingsScreen
from netscope.ui.flow_screen import FlowScreen
from netscope.ui.flows_pane import FlowList, FlowsPane
from netscope.ui.format import fmt_count, fmt_ns
from netscope.ui.header import NetscopeHeader
from netscope.ui.help import HelpScreen
from netscope.ui.process_screen import ProcessScreen
from netscope.ui.rings_pane import RingsPane
from netscope.ui.too_small import TooSmallScreen


async def wait_for_sample(pilot: Pilot[int], app: NetscopeApp) -> None:
    deadline = time.monotonic() + 5
    while app.latest is None:
        assert time.monotonic() < deadline, "no sample arrived"
        await pilot.pause(0.02)
    await pilot.pause()


def cell(table: DataTable[str | Text], row: int, col: int) -> str:
    value = table.get_cell_at((row, col))
    return value.plain if isinstance(value, Text) else str(value)


async def test_cpu_pane_shows_the_recorded_numbers(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "c")  # freeze on the first sample; the CPUs pane
        first = recording.samples[0]
        view = build_cpu_view(first, recording.info.cpus)
        table: DataTable[str | Text] = app.query_one("#cpu-table", DataTable)
        assert table.row_count == len(recording.info.cpus) + 1
        assert [cell(table, r, 0) for r in range(table.row_count)] == ["0", "1", "all"]
        labels = [str(c.label) for c in table.columns.values()]
        rx_col = labels.index("RX run/s")
        for r, row in enumerate(view.rows):
            assert cell(table, r, rx_col) == fmt_count(row.net_rx_runs_per_s)
        # The recording was made with UDP over veth: NET_RX ran tens of thousands of times.
        assert view.total.net_rx_runs_per_s is not None and view.total.net_rx_runs_per_s > 10000
        irq_table: DataTable[str | Text] = app.query_one("#irq-table", DataTable)
        assert irq_table.row_count >= 1
        assert cell(irq_table, 0, 0) == str(view.irqs[0].irq)
        probes = app.query_one("#cpus-probes", Static)
        assert "hardirq" in str(probes.render()) and "softirq" in str(probes.render())


async def test_keys_pause_interval_help_quit(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_sample(pilot, app)
        header = app.query_one("#header", Static)
        assert "REPLAY" in str(header.render())
        await pilot.press("p")
        assert app.paused and "PAUSED" in str(header.render())
        shown = app.latest
        await pilot.pause(1.2)  # the recording moves on underneath
        assert app.latest is not shown
        await pilot.press("p")
        assert not app.paused
        await pilot.press("plus")
        assert app.interval == 2.0
        await pilot.press("minus", "minus")
        assert app.interval == 0.5
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("c", "tab")
        assert app.focused is not None and app.focused.id in ("cpu-table", "irq-table")
        await pilot.press("q")
    assert app.return_value == 0


async def test_narrow_terminal_keeps_the_essential_columns(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("c")
        table: DataTable[str | Text] = app.query_one("#cpu-table", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        for essential in ("CPU", "hirq/s", "RX run/s", "sirq%", "polls/s", "sqz/s", "drop/s"):
            assert essential in labels
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80


class FlakySource:
    """A live-like source (sampled on the app's cadence) over a recording, whose first read fails
    as a /proc read racing a hot-unplug might."""

    live = True
    replay = None  # live-like: it cannot seek

    def __init__(self, recording: Recording) -> None:
        self.recorded = ReplaySource(recording)
        self.info = recording.info
        self.failed = False

    def need(self, names: Collection[str]) -> tuple[Callable[[], None], ...]:
        return ()

    def statuses(self) -> tuple[ProbeStatus, ...]:
        return self.recorded.statuses()

    def sample(self) -> Sample | None:
        if not self.failed:
            self.failed = True
            raise OSError("simulated read failure")
        return self.recorded.sample()

    def set_flow_filter(self, flt: Filter | None) -> None:
        pass

    def watch_flow(self, flow: tuple[int, int, str, int, str, int] | None) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return self.recorded.describe()

    def close(self) -> None:
        pass


async def test_a_failed_interval_is_reported_and_sampling_goes_on(recording: Recording) -> None:
    app = make_app(FlakySource(recording))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_sample(pilot, app)
        assert any("simulated read failure" in str(n.message) for n in app._notifications)
        assert app.latest is recording.samples[0]


def queue_sample(app: NetscopeApp, sample: Sample) -> None:
    """What the live sampler does with a sample: the model built, both queued for the UI."""
    app.timeline.add(sample)
    app._queue_sample(sample, app.timeline.shown())


async def test_samples_a_busy_screen_cannot_take_are_dropped_and_counted(recording: Recording) -> None:
    """Ten live samples arrive while the UI thread is busy (this coroutine runs on it): the four
    newest wait, the rest are dropped and the header counts them; none piles up. An interval that
    stretched (the reading could not finish in time) is said so in the header."""
    app = make_app(FlakySource(recording), interval=60.0)  # the sampler's own samples come later
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        samples = [replace(recording.samples[i % len(recording.samples)], ts=1000.0 + i) for i in range(10)]
        for sample in samples:
            queue_sample(app, sample)
        assert len(app._queue) == 4
        await pilot.pause()
        assert app.latest is samples[-1] and app.samples_dropped == 6
        header = "".join(s.text for s in app.query_one(NetscopeHeader).render_lines(Region(0, 0, 120, 1)))
        assert "6 samples dropped" in header
        assert "this interval took" not in header
        queue_sample(app, replace(samples[-1], ts=2000.0, interval_s=90.0))  # a reading that took long
        await pilot.pause()
        header = "".join(s.text for s in app.query_one(NetscopeHeader).render_lines(Region(0, 0, 120, 1)))
        assert "this interval took 90.00s" in header


def header_line(app: NetscopeApp, width: int = 120) -> str:
    return "".join(s.text for s in app.query_one(NetscopeHeader).render_lines(Region(0, 0, width, 1)))


async def test_looking_back_while_live_steps_through_the_kept_views_and_end_returns(
    recording: Recording,
) -> None:
    """, and . step through the views of the last intervals while samples keep coming (the view
    looked at stays); the arrows stay with the table that has the focus; End is live again."""
    app = make_app(FlakySource(recording), interval=60.0)  # the sampler's own samples come later
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()

        def arrive(i: int) -> None:
            queue_sample(app, replace(recording.samples[i % len(recording.samples)], ts=1000.0 + i))

        for i in range(5):
            arrive(i)
            await pilot.pause()
        assert app.shown is not None and app.shown.latest.ts == 1004.0
        await pilot.press("comma", "comma")
        assert app.shown.latest.ts == 1002.0
        assert "BACK 2s" in header_line(app)
        arrive(5)  # collection goes on; the view looked at stays
        await pilot.pause()
        assert app.shown.latest.ts == 1002.0 and app.latest is not None and app.latest.ts == 1005.0
        assert "BACK 3s" in header_line(app)
        await pilot.press("d")  # the Drops table takes the focus, and keeps its arrows
        assert isinstance(app.focused, DataTable)
        await pilot.press("right", "left", "comma")
        assert app.shown.latest.ts == 1001.0
        await pilot.press("full_stop")
        assert app.shown.latest.ts == 1002.0
        await pilot.press("end")
        assert app.shown.latest.ts == 1005.0 and "LIVE" in header_line(app)
        await pilot.press("end")  # live already: End is the table's again
        assert app.shown.latest.ts == 1005.0


async def test_looking_back_a_pane_says_where_the_figures_of_its_later_probes_start(
    recording: Recording,
) -> None:
    """The NAPI probe came live at the third interval only (the CPUs pane opened then): looking
    back, the CPUs pane's probe line says from when its figures are (the counters go back further),
    at a moment before (napi idle then) and after; live again, the line says nothing of it."""
    app = make_app(FlakySource(recording), interval=60.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for i in range(5):
            sample = replace(recording.samples[i % len(recording.samples)], ts=1000.0 + i)
            if i < 2:  # not attached yet
                probes = tuple(
                    replace(p, state=ProbeState.IDLE) if p.name == "napi" else p for p in sample.probes
                )
                sample = replace(sample, probes=probes)
            queue_sample(app, sample)
            await pilot.pause()
        started = time.strftime("%H:%M:%S", time.localtime(1002.0))
        await pilot.press("c")
        line = app.query_one("#cpus-probes", Static)
        assert "its figures from" not in str(line.content)
        await pilot.press("comma", "comma", "comma", "comma")  # 1000: napi not attached yet
        assert app.shown is not None and app.shown.latest.ts == 1000.0
        assert f"· napi (its figures from {started})" in str(line.content)
        assert "hardirq (its figures" not in str(line.content)  # live from the first interval
        await pilot.press("full_stop", "full_stop", "full_stop")  # 1003: live, and since when
        assert re.search(
            rf"● napi( 1:\d+( \(measured 1 interval in \d+\))?)? \(its figures from {started}\)",
            str(line.content),
        ), line.content
        await pilot.press("end")
        assert "its figures from" not in str(line.content)


async def test_drops_pane_reason_detail_and_back(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("d")
        await pilot.press("p")
        await pilot.pause()
        assert app.shown is not None
        view = app.shown.drops  # the frozen view on screen
        assert view is not None and view.rows
        # (the views kept for trends leave the interval's logged drops to the bounded log)
        assert view == replace(build_drops_view(app.shown.latest, recording.info), events=())
        table: DataTable[str | Text] = app.query_one("#drops-table", DataTable)
        assert app.focused is table
        assert [cell(table, r, 0) for r in range(table.row_count)] == [row.label for row in view.rows]
        assert cell(table, 0, 1) == fmt_count(view.rows[0].per_s)
        # The recording holds the three causes the kernel tests use.
        assert {"NO_SOCKET", "SOCKET_RCVBUFF", "NETFILTER_DROP"} <= {row.name for row in view.rows}
        summary = str(app.query_one("#drops-summary", Static).render())
        assert "drops since start" in summary and "logged/s" in summary and "lost" in summary
        log: DataTable[str | Text] = app.query_one("#drop-log", DataTable)
        assert log.row_count > 0
        await pilot.press("down", "enter")
        assert isinstance(app.screen, DropReasonScreen)
        assert app.screen.reason == view.rows[1].reason
        locations: DataTable[str | Text] = app.screen.query_one("#reason-locations", DataTable)
        assert cell(locations, 0, 0) == view.rows[1].locations[0].key
        await pilot.press("escape")
        assert not isinstance(app.screen, DropReasonScreen)
        await pilot.press("c")
        assert app.focused is app.query_one("#cpu-table", DataTable)


async def test_rings_pane_devices_queues_and_device_screen(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "r")
        await pilot.pause()
        assert app.shown is not None and app.shown.rings is not None
        view = app.shown.rings
        table: DataTable[str | Text] = app.query_one("#rings-table", DataTable)
        assert app.focused is table
        assert [cell(table, r, 0) for r in range(table.row_count)] == [d.label for d in view.devices]
        busiest = view.devices[0]
        assert "@" in busiest.label  # the recording's traffic crossed veths in namespaces
        labels = [str(c.label) for c in table.columns.values()]
        assert cell(table, 0, labels.index("RX pkt/s")) == fmt_count(busiest.rx_pps)
        eth0 = next(r for r in range(table.row_count) if cell(table, r, 0) == "eth0")
        assert cell(table, eth0, labels.index("RX ring")) == "256/256"
        lo = next(r for r in range(table.row_count) if cell(table, r, 0) == "lo")
        assert cell(table, lo, labels.index("RX ring")) == "n/a"
        # The receiving veth's NAPI instance (the sender's veth has none), its row selected.
        receiver = next(r for r in range(table.row_count) if cell(table, r, 0).startswith("vnsb"))
        table.move_cursor(row=receiver)
        await pilot.pause()
        napi: DataTable[str | Text] = app.query_one("#rings-napi", DataTable)
        assert napi.row_count >= 1
        table.move_cursor(row=0)
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, DeviceScreen)
        assert app.screen.key == (busiest.netns, busiest.ifindex)
        await pilot.press("escape")
        assert not isinstance(app.screen, DeviceScreen)


async def test_processes_pane_a_process_with_drops_only_and_its_screen(recording: Recording) -> None:
    """The recording's never-reading receiver: a row with no reads and its drops by reason; Enter
    opens its screen, which names its unit and the drops at its sockets."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "o")
        await pilot.pause()
        assert app.shown is not None and app.shown.processes is not None
        table: DataTable[str | Text] = app.query_one("#processes-table", DataTable)
        rows = app.shown.processes.rows
        assert [cell(table, r, 0) for r in range(table.row_count)] == [str(r.pid) for r in rows]
        stuck = next(i for i, r in enumerate(rows) if r.reads_per_s == 0 and not r.tx_bytes_per_s and r.drops)
        assert dict(rows[stuck].drops).get("SOCKET_RCVBUFF", 0) > 0
        assert any(r.tx_bytes_per_s and not r.reads_per_s for r in rows)  # the senders' rows
        table.move_cursor(row=stuck)
        await pilot.press("enter")
        assert isinstance(app.screen, ProcessScreen)
        title = str(app.screen.query_one("#process-title", Static).content)
        assert "dropped at its sockets: SOCKET_RCVBUFF" in title, title
        await pilot.press("escape", "k")  # back on the pane: k sums the rows per container
        assert cell(table, 0, 0).endswith("proc")
        await pilot.press("k", "s", "s")  # per process again, sorted by drops
        summary = str(app.query_one("#processes-summary", Static).content)
        assert "sorted by drops" in summary, summary
        dropped = [r.drops_per_s for r in sorted(rows, key=lambda r: -r.drops_per_s)]
        assert cell(table, 0, 0) == str(next(r.pid for r in rows if r.drops_per_s == dropped[0]))


async def test_latency_pane_processes_and_process_screen(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "l")
        await pilot.pause()
        assert app.shown is not None and app.shown.latency is not None
        view = app.shown.latency
        table: DataTable[str | Text] = app.query_one("#latency-table", DataTable)
        assert app.focused is table
        assert [cell(table, r, 0) for r in range(table.row_count)] == [str(p.pid) for p in view.processes]
        slowest = view.processes[0]
        # The recording has a reader that drains every 100 ms: it is the slowest, tens of ms.
        assert slowest.stats.p50_ns is not None and 30e6 <= slowest.stats.p50_ns <= 75e6
        assert cell(table, 0, 6) == fmt_ns(slowest.stats.p99_ns)
        summary = str(app.query_one("#latency-summary", Static).render())
        assert "p99" in summary and "reads timed" in summary
        await pilot.press("enter")
        assert isinstance(app.screen, ProcessScreen) and app.screen.pid == slowest.pid
        sockets: DataTable[str | Text] = app.screen.query_one("#process-sockets", DataTable)
        assert cell(sockets, 0, 0).startswith("udp ") and ":6001" in cell(sockets, 0, 0)
        await pilot.press("escape")
        assert not isinstance(app.screen, ProcessScreen)


async def test_tx_pane_shows_each_devices_qdiscs_limits_and_drops(recording: Recording) -> None:
    """The recording's shaped veth: its tbf (3000-byte limit) drops what it was given to send;
    the pane's device row, its qdisc row and the path line show the recording's own counts."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "x")
        tx = app.shown.tx  # type: ignore[union-attr]
        assert tx is not None
        (shaped,) = [d for d in tx.devices if d.root_kind == "tbf"]
        assert shaped.qdisc_drops > 0 and shaped.root is not None and shaped.root.limit == "3000b"
        table: DataTable[str | Text] = app.query_one("#tx-table", DataTable)
        row = [d.label for d in tx.devices].index(shaped.label)
        cells = [str(c) for c in table.get_row_at(row)]
        assert cells[0] == shaped.label and "tbf" in cells and "3000b" in cells
        assert fmt_count(shaped.qdisc_drops / shaped.interval_s) in cells
        table.move_cursor(row=row)
        await pilot.pause()
        qdiscs: DataTable[str | Text] = app.query_one("#tx-qdiscs", DataTable)
        assert str(qdiscs.get_row_at(0)[0]).startswith("tbf ") and str(qdiscs.get_row_at(0)[-1]) == "3000b"
        path = str(app.query_one("#tx-path", Static).render())
        assert "socket send" in path and "qdisc drops" in path and "driver" in path
        await pilot.press("enter")
        assert isinstance(app.screen, DeviceScreen)


async def test_a_tcp_flow_shows_its_retransmits_and_both_ends(recording: Recording) -> None:
    """The recording's TCP connection loses 1 segment in 20 at the receiver: its row's retr/s is
    the sender's retransmits, and its screen shows the receiver and the sender with their state."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "t")
        await pilot.pause()
        pane = app.query_one(FlowsPane)
        (tcp,) = [r for r in pane.rows if r.flow.proto == 6 and r.flow.dport == 6301]
        assert tcp.tcp is not None and tcp.tcp.peer is not None and tcp.tcp.local is not None
        sent_again = tcp.tcp.peer.retransmits
        assert sent_again > 0 and tcp.tcp.retransmits == sent_again + tcp.tcp.local.retransmits
        await pilot.press("slash", *"tcp and dst port 6301", "enter")
        await pilot.pause()
        table: DataTable[str | Text] = app.query_one("#flows-table", DataTable)
        assert table.row_count == 1
        retr = [str(c) for c in table.get_row_at(0)]
        assert fmt_count(tcp.tcp.retransmits / app.shown.latest.interval_s) in retr  # type: ignore[union-attr]
        await pilot.press("enter")
        assert isinstance(app.screen, FlowScreen)
        path = str(app.screen.query_one("#flow-path", Static).render())
        assert f"sender   {tcp.flow.saddr}:{tcp.flow.sport}" in path and "retransmits" in path
        assert f"receiver {tcp.flow.daddr}:{tcp.flow.dport}" in path


# Every screen, frozen (p) on the recording's first sample: the keys that reach it.
SCREENS = {
    "home": (),
    "rings": ("r",),
    "device": ("r", "enter"),
    "cpus": ("c",),
    "cpu-screen": ("c", "enter"),
    "drops": ("d",),
    "drop-reason": ("d", "enter"),
    "latency": ("l",),
    "process": ("l", "enter"),
    "flows": ("t",),
    "flow-screen": ("t", "enter"),
    "tcp-flow-screen": ("t", "slash", *"tcp and dst port 6301", "enter", "enter"),
    "processes": ("o",),
    "tx": ("x", "down"),  # the shaped veth: its tbf qdisc, dropping
    "help": ("question_mark",),
    "filter": ("slash",),
    "findings": ("f",),
}
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("keys", SCREENS.values(), ids=SCREENS.keys())
def test_snapshot_screen(
    snap_compare, recording: Recording, keys: tuple[str, ...], size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    """Every screen at the smallest supported terminal and a roomy one."""
    app = make_app(ReplaySource(recording))

    async def first_sample_paused(pilot: Pilot[int]) -> None:
        await wait_for_sample(pilot, app)
        await pilot.press("p", *keys)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=first_sample_paused)


async def test_findings_strip_screen_and_drill_to_the_evidence(recording: Recording) -> None:
    """The recording's drops make findings: the home strip lists them worst first, `f` opens them
    all, Enter on one shows the pane (and row) with its evidence."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p")
        assert app.shown is not None and app.shown.findings
        strip = str(app.query_one("#home-findings", Static).render())
        worst = app.shown.findings[0].finding
        assert worst.summary in strip
        await pilot.press("f", "f")
        await pilot.pause()
        assert isinstance(app.screen, FindingsScreen)
        assert sum(isinstance(s, FindingsScreen) for s in app.screen_stack) == 1  # not one on another
        table: DataTable[str | Text] = app.screen.query_one("#findings-table", DataTable)
        assert table.row_count == len(app.shown.findings)
        detail = str(app.screen.query_one("#finding-detail", Static).render())
        assert worst.summary in detail and worst.suggestion in detail
        no_socket = next(i for i, a in enumerate(app.shown.findings) if a.finding.id.startswith("no_socket:"))
        table.move_cursor(row=no_socket, animate=False)
        await pilot.press("enter")
        await pilot.pause()
        # NO_SOCKET's evidence: the Drops pane, and that reason's own screen over it.
        assert app.query_one(TabbedContent).active == "drops"
        assert isinstance(app.screen, DropReasonScreen)
        await pilot.press("escape", "h")
        await pilot.pause()
        await pilot.click("#home-findings")
        assert isinstance(app.screen, FindingsScreen)


async def test_flows_pane_sort_and_flow_screen(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "t")
        await pilot.pause()
        assert app.shown is not None and app.shown.flows is not None
        pane = app.query_one(FlowsPane)
        table: DataTable[str | Text] = app.query_one("#flows-table", DataTable)
        assert app.focused is table
        in_sight = table.row_count  # the rows in sight are the table's (FlowList)
        assert in_sight and [cell(table, r, 0) for r in range(in_sight)] == [
            r.label for r in pane.rows[:in_sight]
        ]
        assert [r.rx_pps for r in pane.rows] == sorted((r.rx_pps for r in pane.rows), reverse=True)
        await pilot.press("s")  # by drops
        assert [r.drops for r in pane.rows] == sorted((r.drops for r in pane.rows), reverse=True)
        # The slow reader's flow: a reader, its copy latency, the path down to the process. (Among
        # the recording's flows it is not always in sight: the filter brings it.)
        slow = next(r for r in pane.rows if r.flow.dport == 6001 and r.pid is not None)
        assert slow.copy_p50_ns is not None
        await pilot.press("slash", *f"udp and dst port 6001 and src port {slow.flow.sport}", "enter")
        await pilot.pause()
        assert [r.flow for r in pane.rows] == [slow.flow]
        await pilot.press("enter")
        assert isinstance(app.screen, FlowScreen)
        path = str(app.screen.query_one("#flow-path", Static).render())
        assert f"{slow.pid} python" in path and "waited p50" in path
        await pilot.press("escape")
        assert not isinstance(app.screen, FlowScreen)


async def test_drill_down_machine_reason_flow_and_back(recording: Recording) -> None:
    """machine → drop reason → a flow dropped with it → Esc → Esc, breadcrumbs on the way."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "d", "enter")  # the busiest reason: NO_SOCKET
        assert isinstance(app.screen, DropReasonScreen) and app.screen.label == "NO_SOCKET"
        flows = app.screen.query_one("#reason-flows", FlowList)
        assert flows.rows_shown and all(dict(r.flow.drops).get("NO_SOCKET") for r in flows.rows_shown)
        flows.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, FlowScreen)
        crumbs = str(app.screen.query_one("#flow-crumbs", Static).render())
        assert crumbs.startswith("machine › drops › NO_SOCKET › udp ")
        assert "NO_SOCKET" in str(app.screen.query_one("#flow-path", Static).render())
        await pilot.press("escape")
        assert isinstance(app.screen, DropReasonScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, DropReasonScreen | FlowScreen)
        await pilot.press("c", "enter")  # CPU 0 → the flows it received
        assert isinstance(app.screen, CpuScreen) and app.screen.cpu == 0
        cpu_flows = app.screen.query_one("#cpu-flows", FlowList)
        assert all(0 in r.flow.cpus for r in cpu_flows.rows_shown)


async def test_slash_narrows_the_views_of_processes_to_a_pid_and_the_header_says_so(
    recording: Recording,
) -> None:
    """`/pid N`: the Processes pane keeps that process's row, the flows their reader is not it go,
    and the header names the scope; an empty filter brings the whole box back."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "o")
        assert app.shown is not None and app.shown.processes is not None
        rows = app.shown.processes.rows
        assert len(rows) > 1
        pid = rows[-1].pid
        await pilot.press("slash", *f"pid {pid}", "enter")
        await pilot.pause()
        assert app.timeline.scope.pids == {pid}
        table: DataTable[str | Text] = app.query_one("#processes-table", DataTable)
        assert [cell(table, r, 0) for r in range(table.row_count)] == [str(pid)]
        assert f"only pid {pid}" in header_line(app)
        flows = app.shown.flows
        assert flows is not None and all(r.pid == pid for r in flows.rows)
        await pilot.press("slash", "ctrl+u", "enter")
        await pilot.pause()
        assert table.row_count == len(rows) and "only" not in header_line(app)


async def test_slash_edits_the_flow_filter_inline(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "t", "slash")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"udp and port 99999", "enter")
        error = str(app.screen.query_one("#filter-error", Static).render())
        assert "not a port number" in error and "^" in error
        assert isinstance(app.screen, FilterScreen) and app.timeline.flow_filter is None  # old one kept
        field = app.screen.query_one(Input)
        field.value = "udp and dst port 6001"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, FilterScreen)
        pane = app.query_one(FlowsPane)
        assert pane.rows and all(r.flow.dport == 6001 for r in pane.rows)
        await pilot.press("enter")  # the flow's screen: `/` starts from its own expression
        assert isinstance(app.screen, FlowScreen)
        await pilot.press("slash")
        assert isinstance(app.screen, FilterScreen)
        assert app.screen.query_one(Input).value == app.screen.current
        assert app.screen.current.startswith("udp and src host ") and "dport 6001" in app.screen.current
        await pilot.press("escape")
        assert isinstance(app.screen, FlowScreen)


async def test_home_screen_pipeline_and_one_key_to_each_pane(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p")
        assert app.query_one(TabbedContent).active == "home"
        screen_text = " ".join(str(w.render()) for w in app.query(Static))
        for word in ("Rings", "CPUs", "Drops", "Latency"):
            assert word in screen_text
        stages = build_pipeline(app.shown)  # type: ignore[arg-type]
        assert [s.name.split(" ")[0] for s in stages[:3]] == ["NIC", "hardirq", "NAPI"]
        # The recording's NO_SOCKET storm makes the stack the bottleneck, and it is drawn so; on
        # the way out, the shaped veth's tbf (its limit reached) makes the qdisc TX's.
        rx_bottleneck, tx_bottleneck = [s for s in stages if s.bottleneck]
        assert rx_bottleneck.key == "drops" and rx_bottleneck.losses[0][0] == "NO_SOCKET"
        assert tx_bottleneck.name == "qdisc" and tx_bottleneck.losses[0][0] == "qdisc drops"
        box = app.query_one("#stage-3")
        assert box.has_class("bottleneck") and "bottleneck" in str(box.render())
        tx_box = app.query_one("#stage-6")
        assert tx_box.has_class("bottleneck") and "qdisc drops ◀ bottleneck" in str(tx_box.render())
        await pilot.click("#stage-3")
        assert app.query_one(TabbedContent).active == "drops"
        await pilot.click("#--content-tab-home")
        await pilot.click("#stage-6")
        assert app.query_one(TabbedContent).active == "tx"
        for key, pane in (
            ("r", "rings"),
            ("c", "cpus"),
            ("l", "latency"),
            ("t", "flows"),
            ("x", "tx"),
            ("h", "home"),
        ):
            await pilot.press(key)
            assert app.query_one(TabbedContent).active == pane
        for digit, pane in enumerate(
            ("home", "rings", "cpus", "drops", "latency", "flows", "processes", "tx")
        ):
            await pilot.press(str(digit))
            assert app.query_one(TabbedContent).active == pane
        for key in ("r", "c", "d", "l", "t", "x"):  # home from every pane (a pane's second table kept it)
            await pilot.press(key, "h")
            assert app.query_one(TabbedContent).active == "home", key


async def test_home_trends_draw_each_stages_history_and_push_nothing_off(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("space", "full_stop", "full_stop", "full_stop")  # paused, 3 steps on
        history = app.shown.stage_history  # type: ignore[union-attr]
        assert len(history) >= 4
        rates = app.query_one("#trend-0 .trend-rate", Sparkline).data
        assert list(rates or ()) == [stages[0].rate or 0.0 for stages in history]  # NIC rings' rx
        napi_lost = app.query_one("#trend-2 .trend-lost", Sparkline).data
        assert list(napi_lost or ()) == [stages[2].lost_per_s for stages in history]
        assert max(napi_lost or (0,)) > 0  # the recording's time_squeeze
        for line in ("#home-rings", "#home-latency", "#home-flows", "#home-tx", "#home-cost"):  # on screen
            assert app.query_one(line).region.bottom <= app.query_one("#home-pane").region.bottom
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not app.query_one("#home-lower").display or app.query_one("#home-lower").region.height == 0


async def test_a_pane_switch_draws_the_pane_once_and_pausing_draws_nothing(
    recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dearest work of a key on a loaded box is drawing a pane: once per switch (the Resize a
    pane gets when it comes back into view drew it a second time), none for pausing, and again
    only when the width changes."""
    shows: list[str] = []
    for pane in (RingsPane, CpuPane, DropsPane, FlowList):
        original = pane.show

        def counted(self: Any, *args: Any, original: Callable[..., None] = original) -> None:
            shows.append(type(self).__name__)
            original(self, *args)

        monkeypatch.setattr(pane, "show", counted)
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p", "r", "c", "d", "t", "h")  # each pane laid out once
        await pilot.pause()
        for key, pane in (("r", "RingsPane"), ("c", "CpuPane"), ("d", "DropsPane"), ("t", "FlowList")):
            shows.clear()
            await pilot.press(key)
            await pilot.pause()
            assert shows == [pane], key
            await pilot.press("h")
        await pilot.press("d", "p")  # resume: the newest view is drawn
        await pilot.pause()
        assert "DropsPane" in shows and not app.paused
        shows.clear()
        await pilot.press("p")
        await pilot.pause(1.2)  # the recording moves on underneath
        assert shows == [] and app.paused
        await pilot.resize_terminal(90, 40)
        await pilot.pause()
        assert shows == ["DropsPane"]
        columns = app.query_one("#drops-table", DataTable).columns.values()
        assert "top device" not in [str(c.label) for c in columns]


async def test_cyclic_garbage_is_collected_on_the_apps_clock(recording: Recording) -> None:
    """The collector does not run when allocation triggers it (in the middle of a key's answer)
    but every GC_EVERY_S, and it is back on for the rest of the process after the app."""

    class Node:
        other: Node | None = None

    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_sample(pilot, app)
        assert not gc.isenabled()
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect(0)  # a young collection (what allocation would trigger) does not run it
        await pilot.pause(GC_EVERY_S * 1.5)
        assert gone() is None
        await pilot.press("q")
    assert gc.isenabled()


async def test_mouse_reaches_every_pane_and_drill_down(recording: Recording) -> None:
    """Tabs, stage lines, pane lines, table rows (click to highlight, click again to open) and the
    footer's keys all answer the mouse, at 80x24 where the home screen is compact."""
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p")
        tabs = app.query_one(TabbedContent)
        assert app.query_one("#home-pane").has_class("compact")
        await pilot.click("#stage-line-3")  # the stack: its losses are in Drops
        assert tabs.active == "drops"
        await pilot.click("#--content-tab-home")
        await pilot.click("#home-latency")
        assert tabs.active == "latency"
        for pane in ("rings", "cpus", "drops", "latency", "flows"):
            await pilot.click(f"#--content-tab-{pane}")
            assert tabs.active == pane
        await pilot.click("#flows-table", offset=(60, 0))  # the drop/s header (after flow, pkt/s)
        assert "sorted by drops" in str(app.query_one("#flows-summary", Static).render())
        second_row = (2, 2)  # below the header and the first row
        await pilot.click("#flows-table", offset=second_row)  # highlights it
        assert not isinstance(app.screen, FlowScreen)
        assert app.query_one("#flows-table", DataTable).cursor_row == 1
        await pilot.click("#flows-table", offset=second_row)  # opens it
        assert isinstance(app.screen, FlowScreen)
        assert app.screen.row == app.query_one(FlowsPane).rows[1]
        await pilot.press("escape")
        await pilot.click("#--content-tab-drops")
        await pilot.click("#drops-table", offset=second_row)
        await pilot.click("#drops-table", offset=second_row)
        assert isinstance(app.screen, DropReasonScreen)
        await pilot.click("#key-bar", offset=(1, 0))  # the key bar's first key: esc Back
        assert not isinstance(app.screen, DropReasonScreen)


async def test_no_color_is_monochrome_and_nothing_depends_on_colour(
    recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR: Textual draws in greys only; the bottleneck, losses and probe states still read,
    because each carries a mark or a word besides its colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("p")
        assert app.no_color
        box = str(app.query_one("#stage-3").render())
        assert "◀ bottleneck" in box and "✗" in box
        await pilot.press("d")
        probes = str(app.query_one("#drops-probes", Static).render())
        assert "● drops" in probes


async def test_a_terminal_below_80x24_gets_a_sentence_not_a_clipped_screen(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_for_sample(pilot, app)
        assert isinstance(app.screen, TooSmallScreen)
        text = str(app.screen.query_one("#too-small", Static).render())
        assert "at least 80x24" in text and "60x20" in text
        for key in (
            "r",
            "c",
            "d",
            "l",
            "t",
            "f",
            "escape",
            "h",
            "question_mark",
            "escape",
            "p",
        ):  # nothing breaks
            await pilot.press(key)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen | HelpScreen)
        await pilot.resize_terminal(30, 10)
        await pilot.pause()
        assert "30x10" in str(app.screen.query_one("#too-small", Static).render())
        await pilot.press("q")
    assert app.return_value == 0


async def test_replay_plays_on_from_a_view_looked_back_at_as_if_played_to_it(recording: Recording) -> None:
    app = make_app(ReplaySource(recording))
    source = app.source
    assert isinstance(source, ReplaySource)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("space", "full_stop", "full_stop", "full_stop", "comma", "comma")
        at = recording.samples.index(app.latest)  # type: ignore[arg-type]
        await pilot.press("space")  # play on from here: the model is fed anew up to here
        deadline = time.monotonic() + 5
        while recording.samples.index(app.latest) < at + 2:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the replay did not play on"
            await pilot.pause(0.05)
        await pilot.press("space")
        await pilot.pause(0.3)
        shown = app.shown
        assert shown is not None and shown.latest is app.latest
        # What a model fed from the start up to here shows.
        fresh = Timeline(recording.info)
        for sample in recording.samples[: recording.samples.index(app.latest) + 1]:  # type: ignore[arg-type]
            fresh.add(sample)
        expected = fresh.shown()
        assert expected is not None
        assert shown.drops == expected.drops and len(shown.cpu_history) == len(expected.cpu_history)


async def test_replay_time_travel(recording: Recording) -> None:
    """Space pauses the recording, , and . step, [ ] change the speed, g jumps to a time; stepping
    back shows exactly what playing forward to that sample showed."""
    app = make_app(ReplaySource(recording))
    source = app.source
    assert isinstance(source, ReplaySource)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("space")
        assert not source.playing
        await pilot.pause(0.3)
        at = app.latest
        assert at is not None
        await pilot.pause(1.2)  # paused: the recording stays where it was
        assert app.latest is at
        first = recording.samples.index(at)
        shown_forward = {}
        for _ in range(3):
            await pilot.press("full_stop")
            assert app.shown is not None
            shown_forward[recording.samples.index(app.latest)] = app.shown.drops  # type: ignore[arg-type]
        assert list(shown_forward) == [first + 1, first + 2, first + 3]
        timeline = app.timeline
        await pilot.press("comma", "comma")
        assert app.latest is recording.samples[first + 1]
        assert app.shown is not None and app.shown.drops == shown_forward[first + 1]
        assert app.timeline is timeline  # the view kept from then, not rebuilt from the start
        text = str(app.query_one("#header", Static).render())
        assert f"⏸ {first + 2}/{len(recording.samples)} ×1" in text
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert source.speed == 4.0
        await pilot.press("left_square_bracket")
        assert source.speed == 2.0
        # g: to the third sample by its clock time; a bad time is shown and the prompt stays.
        await pilot.press("g")
        field = app.screen.query_one(Input)
        field.value = "25:99"
        await pilot.press("enter")
        assert "not a time" in str(app.screen.query_one("#jump-error", Static).render())
        field.value = time.strftime("%H:%M:%S", time.localtime(recording.samples[2].ts))
        await pilot.press("enter")
        assert app.latest is recording.samples[2]
        await pilot.press("space")
        assert source.playing
        await pilot.pause(2.5)  # plays on at 2x from there
        assert recording.samples.index(app.latest) >= 4  # type: ignore[arg-type]


async def test_shift_r_records_what_the_tui_receives(
    recording: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = FlakySource(recording)  # live-like: recording is for live sources
    source.failed = True
    app = make_app(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sample(pilot, app)
        await pilot.press("R")
        assert app.recorder is not None
        started_with = app.latest
        deadline = time.monotonic() + 10
        while app.recorder.samples < 2:
            assert time.monotonic() < deadline, "no samples recorded"
            await pilot.pause(0.1)
        assert "● REC netscope-vm-" in str(app.query_one("#header", Static).render())
        await pilot.press("R")
        assert app.recorder is None
    (path,) = tmp_path.glob("netscope-vm-*.nsrec")
    saved = read_recording(path)
    assert saved.info == recording.info and len(saved.samples) >= 2
    start = recording.samples.index(started_with) + 1  # type: ignore[arg-type]
    assert list(saved.samples) == list(recording.samples[start : start + len(saved.samples)])
