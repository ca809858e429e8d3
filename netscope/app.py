"""The Textual app. The source is injected (live or a recording), so tests hand it a recording.

Threads: one worker per probe brings it up (compiles are serialized by the probe layer), one sampler
worker calls `source.sample()` each interval and posts the immutable sample; the app only renders.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, TabbedContent, TabPane

from netscope.model.cpu import CpuView, build_cpu_view
from netscope.model.drops import DropsView, DropTotals, build_drops_view
from netscope.model.sample import DropEvent, ProbeStatus, Sample
from netscope.sources import Source
from netscope.ui.cpu_pane import CpuPane
from netscope.ui.drop_reason import DropReasonScreen
from netscope.ui.drops_pane import DropsPane, ReasonSelected, reason_row
from netscope.ui.header import NetscopeHeader, header_text
from netscope.ui.help import HelpScreen

INTERVALS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
HISTORY = 240  # views kept for trends: 4 minutes at 1 s
MAIN_TABLE = {"cpus": "#cpu-table", "drops": "#drops-table"}
DROP_LOG_KEPT = 1000  # logged drops kept for the log and the reason screens


class SampleReady(Message):
    def __init__(self, sample: Sample) -> None:
        super().__init__()
        self.sample = sample


class SampleFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ProbesChanged(Message):
    def __init__(self, statuses: tuple[ProbeStatus, ...]) -> None:
        super().__init__()
        self.statuses = statuses


class NetscopeApp(App[int]):
    CSS_PATH = Path(__file__).parent / "ui" / "app.tcss"
    TITLE = "netscope"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("p", "pause", "Pause"),
        Binding("c,1", "show_pane('cpus')", "CPUs"),
        Binding("d,2", "show_pane('drops')", "Drops"),
        Binding("plus,equals_sign", "slower", "+interval"),
        Binding("minus", "faster", "-interval"),
        Binding("tab", "focus_next", "Next table", show=False),
        Binding("shift+tab", "focus_previous", "Prev table", show=False),
    ]

    def __init__(self, source: Source, interval: float = 1.0, starters: tuple[Callable[[], None], ...] = ()):
        super().__init__()
        self.source = source
        self.interval = interval
        self.paused = False
        self.latest: Sample | None = None
        # Collected even while paused: trends, the drop log and totals stay complete.
        self.history: deque[CpuView] = deque(maxlen=HISTORY)
        self.drops_history: deque[DropsView] = deque(maxlen=HISTORY)
        self.drop_events: deque[DropEvent] = deque(maxlen=DROP_LOG_KEPT)  # newest first
        self.drop_totals = DropTotals()
        self._starters = starters
        self._stop = threading.Event()
        self.crash: BaseException | None = None

    def compose(self) -> ComposeResult:
        yield NetscopeHeader()
        with TabbedContent(id="panes"):
            with TabPane("CPUs", id="cpus"):
                yield CpuPane()
            with TabPane("Drops", id="drops"):
                yield DropsPane()
        yield Footer()

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the ssh session dropped
            loop.add_signal_handler(sig, self._exit_on_signal, sig)
        self._refresh_header()
        self._show_probes(self.source.statuses())
        for index, starter in enumerate(self._starters):
            self.run_worker(
                lambda s=starter: self._start_probe(s), thread=True, group="probes", name=f"probe-{index}"
            )
        self._sampler()

    def _exit_on_signal(self, signum: int) -> None:
        self._stop.set()
        self.exit(128 + signum)

    def _start_probe(self, starter: Callable[[], None]) -> None:
        self.post_message(ProbesChanged(self.source.statuses()))
        starter()
        self.post_message(ProbesChanged(self.source.statuses()))

    @work(thread=True, exclusive=True, group="sampler")
    def _sampler(self) -> None:
        """Sample on a fixed cadence (live) or at the recording's pace (replay); next poll only
        after the previous one finished."""
        deadline = time.monotonic()
        while not self._stop.is_set():
            if self.source.live:
                deadline += self.interval
                if self._stop.wait(max(deadline - time.monotonic(), 0)):
                    return
                deadline = max(deadline, time.monotonic() - self.interval)
            try:
                sample = self.source.sample()
            except Exception as e:  # one bad interval (e.g. /proc read racing a hot-unplug)
                self.post_message(SampleFailed(f"{type(e).__name__}: {e}"))
                continue
            if sample is None:
                return
            self.post_message(SampleReady(sample))
            if not self.source.live and self._stop.wait(sample.interval_s):
                return

    def on_sample_ready(self, message: SampleReady) -> None:
        sample = self.latest = message.sample
        info = self.source.info
        self.history.append(build_cpu_view(sample, info.cpus))
        drops_view = build_drops_view(sample, info)
        if drops_view is not None and sample.drops is not None:
            self.drops_history.append(drops_view)
            self.drop_events.extendleft(sample.drops.events)
            self.drop_totals = self.drop_totals.add(sample.drops)
        if not self.paused:
            self._render_latest()

    def on_sample_failed(self, message: SampleFailed) -> None:
        self.notify(f"sampling failed: {message.error}", severity="error", timeout=5)

    def on_probes_changed(self, message: ProbesChanged) -> None:
        self._show_probes(message.statuses)

    def _render_latest(self) -> None:
        if self.latest is None:
            return
        self.query_one(CpuPane).show(tuple(self.history))
        self._show_probes(self.latest.probes)
        self.query_one(DropsPane).show(tuple(self.drops_history), tuple(self.drop_events), self.drop_totals)
        if isinstance(self.screen, DropReasonScreen):
            self.screen.update_view(self._latest_drops_view(), tuple(self.drop_events))
        self._refresh_header()

    def _show_probes(self, statuses: tuple[ProbeStatus, ...]) -> None:
        self.query_one(CpuPane).show_probes(statuses)
        self.query_one(DropsPane).show_probes(statuses)

    def _latest_drops_view(self) -> DropsView | None:
        return self.drops_history[-1] if self.drops_history else None

    def action_show_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """The pane shown gets the keys: its main table takes the focus."""
        table = MAIN_TABLE.get(event.pane.id or "")
        if table:
            self.query_one(table).focus()

    def on_reason_selected(self, message: ReasonSelected) -> None:
        view = self._latest_drops_view()
        row = reason_row(view, message.reason) if view is not None else None
        label = (
            row.label
            if row is not None
            else next(
                (
                    f"{e.subsystem}/{e.name}" if e.subsystem else e.name
                    for e in self.drop_events
                    if e.reason == message.reason
                ),
                f"reason {message.reason}",
            )
        )
        self.push_screen(DropReasonScreen(message.reason, label, view, tuple(self.drop_events)))

    def _refresh_header(self) -> None:
        ts = self.latest.ts if self.latest else None
        self.query_one(NetscopeHeader).update(
            header_text(self.source.info, ts, self.interval, self.source.live, self.paused)
        )

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._render_latest()
        self._refresh_header()

    def _step_interval(self, step: int) -> None:
        index = min(range(len(INTERVALS)), key=lambda i: abs(INTERVALS[i] - self.interval))
        self.interval = INTERVALS[max(0, min(len(INTERVALS) - 1, index + step))]
        self._refresh_header()

    def action_slower(self) -> None:
        self._step_interval(+1)

    def action_faster(self) -> None:
        self._step_interval(-1)

    async def action_quit(self) -> None:
        self._stop.set()
        self.exit(0)

    def _handle_exception(self, error: Exception) -> None:
        """An exception in a pane or worker: detach, leave the terminal clean, and let the CLI
        print one line (the traceback goes to the log). Under Pilot, tests see the exception."""
        self.crash = error
        self._stop.set()
        self.source.close()
        if self.is_headless:
            super()._handle_exception(error)
        else:
            self.exit(1)

    def on_unmount(self) -> None:
        # Detach now, and stop probes still queued for the compiler, rather than after the
        # workers finish: quitting must not wait for compiles that would be thrown away.
        self._stop.set()
        self.source.close()


def make_app(source: Source, interval: float = 1.0) -> NetscopeApp:
    """The app over any source; a live source's probes come up in workers after the first frame."""
    return NetscopeApp(source, interval, source.starters())
