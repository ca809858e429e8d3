"""The Textual app. The source is injected (live or a recording), so tests hand it a recording.

Threads: one worker per probe brings it up (compiles are serialized by the probe layer), one sampler
worker calls `source.sample()` each interval and posts the immutable sample; the app only renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import cast

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, TabbedContent, TabPane
from textual.worker import WorkerFailed

from netscope.model.filter import Filter
from netscope.model.flows import FLOWS_TOP
from netscope.model.sample import LOOKBACK, ProbeStatus, Sample
from netscope.model.timeline import Timeline, ViewModel, past_view
from netscope.panes import BY_ID, PANES, PaneSpec
from netscope.sources import Replay, Source
from netscope.sources.cadence import every
from netscope.sources.recording import TuiRecorder
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.exit_guard import ExitGuard, GuardedDriver
from netscope.ui.filter_input import FilterScreen
from netscope.ui.findings import FindingChosen, ShowFindings, evidence
from netscope.ui.header import NetscopeHeader, ReplayState, header_text
from netscope.ui.help import HelpScreen
from netscope.ui.key_bar import KeyBar
from netscope.ui.pane import Pane, ShowPane, pane_widget
from netscope.ui.replay_jump import JumpScreen
from netscope.ui.too_small import TooSmallScreen, too_small
from netscope.ui.widgets import show_text

INTERVALS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
STRETCHED = 1.1  # an interval this many times the one asked for is said to have stretched
LIVE_QUEUE = 4  # live samples waiting for the UI at most; older ones are dropped (and counted)
# Attached whatever is on screen: they run once per interrupt and once per drop, not per packet, and
# the drop totals since start and the findings need every one.
ALWAYS_ATTACHED = ("hardirq", "drops")
# The cyclic garbage collector runs on this clock, not when allocation triggers it: the young
# generations every GC_EVERY_S at most, all of them every GC_FULL_EVERY-th time
# (NetscopeApp._collect_garbage), after the screen a sample changed is drawn (a timer of its own
# woke the process once more a second: on this VM a wake-up costs about 1 ms of CPU); and every
# GC_IDLE_S while no sample comes (a paused replay, keys pressed).
GC_EVERY_S = 1.0
GC_FULL_EVERY = 10
GC_IDLE_S = 10.0


class SampleReady(Message):
    """A recording's sample, in its turn (replay)."""

    def __init__(self, sample: Sample, index: int, shown: ViewModel | None, generation: int) -> None:
        super().__init__()
        self.sample = sample
        self.index = index  # the sample's place in the recording
        self.shown = shown  # the views with it, built by the player
        self.generation = generation  # of the timeline it was fed to (a jump starts a new one)


class ReplayEnded(Message):
    pass


class SamplesQueued(Message):
    """Live samples wait in the app's queue (one message however many)."""


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
        *(Binding(f"{p.key},{i}", f"show_pane('{p.id}')", p.title) for i, p in enumerate(PANES)),
        Binding("f", "findings", "Findings"),
        Binding("slash", "filter", "Filter"),
        Binding("R", "record", "Record"),
        Binding("plus,equals_sign", "slower", "+interval"),
        Binding("minus", "faster", "-interval"),
        Binding("space", "replay_play", "Play/pause"),
        # Time: , and . (the arrows stay with the tables and the tabs); End: live again.
        Binding("comma", "step(-1)", "Back", show=False),
        Binding("full_stop", "step(1)", "Forward", show=False),
        Binding("end", "live", "Live", priority=True, show=False),
        Binding("left_square_bracket", "replay_speed(-1)", "Slower", show=False),
        Binding("right_square_bracket", "replay_speed(1)", "Faster", show=False),
        Binding("g", "replay_jump", "Go to"),
        Binding("tab", "focus_next", "Next table", show=False),
        Binding("shift+tab", "focus_previous", "Prev table", show=False),
    ]

    def __init__(
        self,
        source: Source,
        interval: float = 1.0,
        interfaces: tuple[str, ...] = (),
        netns: str | None = None,
        flow_filter: Filter | None = None,
        flows_top: int | None = FLOWS_TOP,
        lookback: int = LOOKBACK,
    ):
        super().__init__(driver_class=GuardedDriver)
        self.source = source
        self.interval = interval
        self.exit_guard = ExitGuard(source.close)
        self._ui_loop: asyncio.AbstractEventLoop | None = None
        # No sliding tab underline or smooth scrolling: each animation frame is a full render,
        # which on a box busy with a packet storm held a key's answer back, and costs bytes over ssh.
        self.animation_level = "none"
        self.paused = False
        self.latest: Sample | None = None  # the newest sample, shown or not
        # Fed even while paused; its flow lists hold the busiest `flows_top` (None: every flow).
        self.timeline = Timeline(source.info, interfaces, netns, flow_filter, flows_top)
        self.shown: ViewModel | None = None  # what the screen shows (frozen while paused)
        self._needed: frozenset[str] | None = None  # the probes the view on screen reads
        self._header = NetscopeHeader()
        # What the probe lines say now: the probes' states, and (looking back) where figures start.
        self._probes_shown: tuple[tuple[ProbeStatus, ...], dict[str, float] | None] | None = None
        self._gc_runs = 0  # collections on the app's clock, to make every GC_FULL_EVERY-th a full one
        self._gc_at = 0.0  # when the last one ran (monotonic)
        self._replay_next = 0  # replay: the index of the next sample the screen takes
        self.recorder: TuiRecorder | None = None  # R: every sample also goes to a recording
        self._shown_position = 0  # replay: how many samples the view on screen was built from
        self._stop = threading.Event()
        self.crash: BaseException | None = None
        # Live samples the UI has yet to take, each with the views the sampler built from it.
        # The third is the view as kept to look back at (its flows trimmed, model/timeline.py).
        self._queue: deque[tuple[Sample, ViewModel | None, ViewModel | None]] = deque(maxlen=LIVE_QUEUE)
        # The views of the newest sample taken, built off the UI thread (live: by the sampler;
        # replay: by the player), or by a jump. The timeline is fed under _model_lock; a jump in a
        # recording rebuilds it and starts a new generation (samples fed to the old one are not shown).
        self._built: ViewModel | None = None
        self._model_lock = threading.Lock()
        self._generation = 0
        self._fed = 0  # replay: samples the timeline was fed
        self._queue_lock = threading.Lock()
        self._queue_notified = False  # a SamplesQueued message is on its way
        self.samples_dropped = 0  # live samples the UI could not take in time
        # Live: the views of the last `lookback` intervals, newest last, and how many intervals
        # behind the newest the one on screen is (0: live; , and . step, End returns).
        self._lookback = lookback
        self._past: deque[ViewModel] = deque(maxlen=lookback)
        self._back = 0
        self._replay_views: dict[int, ViewModel] = {}  # replay: the last `lookback` views, by index

    def compose(self) -> ComposeResult:
        yield self._header
        # The home screen first, then the panes in receive-path order.
        with TabbedContent(id="panes", initial=PANES[0].id):
            for spec in PANES:
                with TabPane(spec.title, id=spec.id):
                    yield pane_widget(spec)()
        yield KeyBar()

    def on_mount(self) -> None:
        # Python's own handlers, not the event loop's: they run at the UI thread's next bytecode
        # even while a handler keeps the loop busy, and arm the exit deadline.
        self._ui_loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the ssh session dropped
            signal.signal(sig, self._exit_on_signal)
        self._refresh_header()
        self._show_probes(self.source.statuses())
        self._attach_needed()
        self._sampler()
        gc.disable()
        self.set_interval(GC_IDLE_S, self._collect_garbage)

    def _attach_needed(self) -> None:
        """Attach the probes the view on screen reads (the active pane and every drill-down screen
        open), and those always attached; the source detaches the others at once."""
        active = BY_ID.get(self.query_one(TabbedContent).active)
        names = {*ALWAYS_ATTACHED, *(active.probes if active else ())}
        for screen in self.screen_stack:
            if isinstance(screen, DrillScreen):
                names.update(screen.PROBES)
        needed = frozenset(names)
        if needed == self._needed:
            return
        self._needed = needed
        for starter in self.source.need(needed):
            self.run_worker(lambda s=starter: self._start_probe(s), thread=True, group="probes")

    def on_resize(self, event: Resize) -> None:
        """Below 80x24 a sentence says so instead of clipped tables; it goes when the terminal grows."""
        small = too_small(event.size.width, event.size.height)
        shown = [s for s in self.screen_stack if isinstance(s, TooSmallScreen)]
        if small and not shown:
            self.push_screen(TooSmallScreen())
        elif small:
            shown[0].show_size(event.size.width, event.size.height)
        elif shown:  # with whatever was opened over it meanwhile
            while isinstance(self.screen, TooSmallScreen) or shown[0] in self.screen_stack[1:]:
                self.pop_screen()

    def _arm_exit(self, code: int) -> None:
        """From now on the process ends within EXIT_DEADLINE_S (never under Pilot: the test goes on)."""
        if not self.is_headless:
            self.exit_guard.arm(code)

    def _exit_on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop.set()
        self._arm_exit(128 + signum)
        if self._ui_loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: the deadline ends it
                self._ui_loop.call_soon_threadsafe(self.exit, 128 + signum)

    def _start_probe(self, starter: Callable[[], None]) -> None:
        self.post_message(ProbesChanged(self.source.statuses()))
        starter()
        self.post_message(ProbesChanged(self.source.statuses()))

    @work(thread=True, exclusive=True, group="sampler")
    def _sampler(self) -> None:
        if self.source.replay is not None:
            self._play(self.source.replay)
        else:
            self._sample_live()

    def _sample_live(self) -> None:
        """Sample on the fixed cadence (sources/cadence.py); the next poll only after the previous
        one finished."""
        every(self.interval, self._sample_once, self._stop)

    def _sample_once(self) -> bool:
        try:
            sample = self.source.sample()
        except Exception as e:  # one bad interval (e.g. /proc read racing a hot-unplug)
            self.post_message(SampleFailed(f"{type(e).__name__}: {e}"))
            return True
        if sample is not None:
            # The model is built here, off the UI thread: joining, ranking and summing the flows
            # and every other view cost the UI nothing (a key is answered meanwhile).
            with self._model_lock:
                self.timeline.add(sample)
                shown = self.timeline.shown()
            self._queue_sample(sample, shown)
        return True

    def _queue_sample(self, sample: Sample, shown: ViewModel | None) -> None:
        """Samples wait for the UI in a bounded queue: one the UI could not take in time (its
        thread busy for LIVE_QUEUE intervals) is dropped, counted and shown in the header, rather
        than piling up with everything it holds."""
        with self._queue_lock:
            if len(self._queue) == self._queue.maxlen:
                self.samples_dropped += 1
            self._queue.append((sample, shown, past_view(shown) if shown is not None else None))
            notify, self._queue_notified = not self._queue_notified, True
        if notify:
            self.post_message(SamplesQueued())

    def on_samples_queued(self, _message: SamplesQueued) -> None:
        with self._queue_lock:
            samples, self._queue_notified = list(self._queue), False
            self._queue.clear()
        if self._screen_gone():
            return
        for sample, shown, past in samples:
            self._record(sample)
            self._built = shown
            if past is not None:
                self._past.append(past)
                if self._back:  # the view looked back at stays on screen, one more behind
                    self._back = min(self._back + 1, len(self._past) - 1)
        self._show_latest()
        self.call_after_refresh(self._collect_garbage)

    def _play(self, replay: Replay) -> None:
        """Hand over the recording's samples at its own pace times the speed; while paused, or at
        the end, wait for the time-travel keys."""
        while not self._stop.is_set():
            shown = None
            with self._model_lock:  # the model is built here, off the UI thread, as when live
                generation = self._generation
                item = replay.next() if replay.playing else None
                if item is not None:
                    if item[0] != self._fed:  # playing on from a view looked back at
                        self._feed(replay.samples[: item[0]])
                    self.timeline.add(item[1])
                    self._fed += 1
                    shown = self.timeline.shown()
            if item is None:
                if replay.playing:  # the end: stay on the last sample
                    replay.playing = False
                    self.post_message(ReplayEnded())
                if self._stop.wait(0.05):
                    return
                continue
            index, sample = item
            self.post_message(SampleReady(sample, index, shown, generation))
            if self._stop.wait(sample.interval_s / replay.speed):
                return

    def on_sample_ready(self, message: SampleReady) -> None:
        """A recording's sample (replay), in its turn."""
        if self._screen_gone() or message.generation != self._generation:  # sent before a jump
            return
        self._replay_next = message.index + 1
        self._record(message.sample)
        self._built = message.shown
        self._keep_replay_view(message.index, message.shown)
        self._show_latest()

    def _screen_gone(self) -> bool:
        """A sample that outlived the screen (quitting) is not taken."""
        return self._stop.is_set() or not self._header.is_attached

    def _record(self, sample: Sample) -> None:
        """A sample taken: recorded (while recording), and the newest."""
        if self.recorder is not None:
            try:
                self.recorder.write(sample)
            except OSError as e:
                self.notify(f"recording stopped: {self.recorder.path}: {e.strerror}", severity="error")
                self._stop_recording()
        if self.latest is None:
            self._freeze_long_lived()
        self.latest = sample

    def _show_latest(self) -> None:
        if not self.paused and not self._back:
            self._take_view()
            self._render()
        self._refresh_header()

    def _take_view(self) -> None:
        """What the screen shows from now on: the views built with the newest sample taken (by
        the sampler or the player, off the UI thread; or by a jump), whose place the header shows."""
        self.shown = self._built
        self._shown_position = self._replay_next

    def on_replay_ended(self, message: ReplayEnded) -> None:
        self.notify("end of the recording: , and g travel back", timeout=4)
        self._refresh_header()

    def action_record(self) -> None:
        """Start recording every sample into a new file in the current directory, or stop."""
        if self.recorder is not None:
            self._stop_recording()
            return
        try:
            self.recorder = TuiRecorder.start(Path.cwd(), self.source.info, self.source.describe())
        except OSError as e:
            self.notify(f"cannot record: {e.filename}: {e.strerror}", severity="error", timeout=6)
            return
        self.notify(f"recording to {self.recorder.path} (R stops)", timeout=4)
        self._refresh_header()

    def _stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
            self.notify(f"recorded {recorder.samples} intervals to {recorder.path}", timeout=6)
        self._refresh_header()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Time travel only in a replay, recording only live; ←/→ stay with a text field while one
        is focused."""
        if action == "record":
            return self.source.live
        if action == "step":
            return not isinstance(self.focused, Input)
        if action == "live":  # End: back to live when looking back; else the table's own End
            return self.source.live and self._back > 0
        if action.startswith("replay_"):
            return self.source.replay is not None
        return True

    def action_step(self, step: int) -> None:
        """A step through time: in a recording, the replay's; live, through the views of the last
        `lookback` intervals, while collection goes on (End: live again)."""
        if self.source.replay is not None:
            self.action_replay_step(step)
            return
        if not self._past:
            return
        self._back = max(0, min(len(self._past) - 1, self._back - step))
        if self._back:
            self.shown = self._past[-1 - self._back]
        else:  # the newest, with every flow
            self._take_view()
        self._render()

    def action_live(self) -> None:
        self._back = 0
        self._take_view()
        self._render()

    def action_replay_play(self) -> None:
        replay = self._replay()
        replay.playing = not replay.playing
        self._refresh_header()

    def action_replay_step(self, step: int) -> None:
        replay = self._replay()
        replay.playing = False
        self._replay_seek(self._replay_next - 1 + step)

    def action_replay_speed(self, step: int) -> None:
        self._replay().step_speed(step)
        self._refresh_header()

    def action_replay_jump(self) -> None:
        replay = self._replay()
        if not replay.samples:
            return
        shown_ts = self.latest.ts if self.latest else replay.samples[0].ts

        def jump(result: float | bool | None) -> None:
            if isinstance(result, float):
                replay.playing = False
                self._replay_seek(replay.index_at(result))

        self.push_screen(JumpScreen(shown_ts, replay.samples[0].ts), jump)

    def _replay(self) -> Replay:
        replay = self.source.replay
        assert replay is not None  # check_action allows replay_* only then
        return replay

    def _replay_seek(self, index: int) -> None:
        """Show the recording as it stood at samples[index]: the view kept from when it was shown
        (the last `lookback` ones), else the views rebuilt from the start (the model is fed exactly
        what it was fed when playing), or one sample added when stepping forward. A view looked
        back at leaves the model where it was: playing on from there feeds it anew."""
        replay = self._replay()
        if not replay.samples:
            return
        with self._model_lock:
            samples = replay.seek(index)
            kept = self._replay_views.get(len(samples) - 1) if len(samples) < self._fed else None
            if kept is None:
                if len(samples) == self._fed + 1:
                    self.timeline.add(samples[-1])
                    self._fed += 1
                elif len(samples) != self._fed:
                    self._feed(samples)
            self._generation += 1
            self._built = kept or self.timeline.shown()
            self._keep_replay_view(len(samples) - 1, self._built)
        self._replay_next = len(samples)
        self.latest = samples[-1]
        self.paused = False
        self._take_view()
        self._render()
        self._refresh_header()

    def _feed(self, samples: Sequence[Sample]) -> None:
        """A new timeline fed `samples` from the recording's start (with _model_lock held)."""
        old, info = self.timeline, self.source.info
        self.timeline = Timeline(info, old.interfaces, old.netns, old.flow_filter, old.flows_top)
        for sample in samples:
            self.timeline.add(sample)
        self._fed = len(samples)

    def _keep_replay_view(self, index: int, view: ViewModel | None) -> None:
        """The view of the recording's sample `index`, for a step back to show it as it was."""
        if view is None:
            return
        self._replay_views[index] = past_view(view)
        while len(self._replay_views) > self._lookback:
            del self._replay_views[next(iter(self._replay_views))]

    def on_sample_failed(self, message: SampleFailed) -> None:
        self.notify(f"sampling failed: {message.error}", severity="error", timeout=5)

    def on_probes_changed(self, message: ProbesChanged) -> None:
        self._show_probes(message.statuses)
        self._freeze_long_lived()

    def _collect_garbage(self) -> None:
        """Collect cyclic garbage on a clock of our own. Textual's drawing leaves ~12k objects a
        second in cycles (its cached strips). Left to allocation, the collector ran in the middle of
        a key's answer (drawing a pane allocates most), and its full collections, every ~10 s, freed
        ~50k objects in 160-320 ms on a box busy with a packet storm. The young generations, every
        second, free most of it (~1,200 objects, 3-10 ms in the veth flood); the ~1,000 a second that
        outlive them wait for a full collection, every GC_FULL_EVERY s: one a second walked the
        whole old generation (the views kept to look back at) each time, 2% of a core in the flood."""
        now = time.monotonic()
        if now - self._gc_at < GC_EVERY_S * 0.9:  # (a cadence under a second)
            return
        self._gc_at = now
        self._gc_runs += 1
        gc.collect(2 if self._gc_runs % GC_FULL_EVERY == 0 else 1)

    @staticmethod
    def _freeze_long_lived() -> None:
        """What exists once the screen is up and a probe set compiled (modules, the widget tree,
        the BPF objects) lives as long as netscope: out of the cyclic collector's sight, a full
        collection during a packet storm pauses every thread for 25-100 ms, not 100-180 ms."""
        gc.freeze()

    def _render(self) -> None:
        """Render what is on screen; a hidden pane is rendered when it is shown (painting tables
        is the UI's main cost, and it must stay cheap on a loaded box)."""
        self._attach_needed()
        shown = self.shown
        if shown is None:
            return
        # Looking back: where the figures of the probes attached since start begin (the newest
        # view knows); the counters' history is older.
        since = dict(self._past[-1].hooks_since) if self._back and self._past else {}
        self._show_probes(shown.latest.probes, since)
        if isinstance(self.screen, DrillScreen):
            self.screen.update_view(shown)
        else:
            self._pane(BY_ID[self.query_one(TabbedContent).active]).show(shown)
        self._refresh_header()

    def _pane(self, spec: PaneSpec) -> Pane:
        return cast(Pane, self.query_one(pane_widget(spec)))

    def _show_probes(self, statuses: tuple[ProbeStatus, ...], since: dict[str, float] | None = None) -> None:
        """Every pane's probe line (hidden ones too, so that a pane shown says it at once), when the
        probes' states or sampling changed, or looking back started or ended: they rarely do, and
        the lines are looked up in the DOM."""
        if (statuses, since) == self._probes_shown:
            return
        self._probes_shown = (statuses, since)
        for spec in PANES:
            self._pane(spec).show_probes(statuses, since)

    def action_filter(self) -> None:
        """Edit the flow filter; on a flow's screen it starts from that flow's expression."""
        current = self.timeline.flow_filter.text if self.timeline.flow_filter else ""
        if isinstance(self.screen, DrillScreen) and (own := self.screen.filter_text()) is not None:
            current = own
        self.push_screen(FilterScreen(current), self._apply_filter)

    def _apply_filter(self, result: Filter | bool | None) -> None:
        if result is False:
            return
        flt = result if isinstance(result, Filter) else None
        with self._model_lock:
            self.timeline.flow_filter = flt
            if self.source.replay is not None:  # a recording's flows, filtered anew at once
                self._built = self.timeline.shown()
                self._replay_views.clear()  # a step back shows them filtered so too
        self.notify(f"filter: {flt.text if flt else 'none'}", timeout=3)
        self.run_worker(lambda: self.source.set_flow_filter(flt), thread=True, group="filter", exclusive=True)
        if self.paused and self.shown is not None:  # the frozen view, filtered anew
            self.shown = self.timeline.filtered_anew(self.shown)
        else:
            self._take_view()
        self._render()

    def on_show_pane(self, message: ShowPane) -> None:
        self.action_show_pane(message.pane)

    @on(Drill)
    def _open_drill(self, message: Drill) -> None:
        """Enter on a row of a pane or screen: the screen its message builds (not a second one of
        the screen on top: `f` on the findings)."""
        if self.shown is not None:
            screen = message.screen(self.shown)
            if type(screen) is not type(self.screen):
                self._drill(screen)

    def action_findings(self) -> None:
        self.post_message(ShowFindings())

    def on_finding_chosen(self, message: FindingChosen) -> None:
        """Enter on a finding: its pane, and the row there that holds its evidence."""
        self.pop_screen()
        self.action_show_pane(message.finding.finding.pane)
        drill = evidence(message.finding)
        if drill is not None:
            self.post_message(drill)

    def _drill(self, screen: Screen[None]) -> None:
        """Open a drill-down screen; the probes it reads attach now (its flows, say)."""
        self.push_screen(screen)
        self._attach_needed()

    def action_show_pane(self, pane: str) -> None:
        # Leaving a pane: the focus goes first, or Textual hands it to the next table of the pane
        # being hidden, which brings that pane back (the home screen has no table to take it).
        self.set_focus(None)
        self.query_one(TabbedContent).active = pane

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """The pane shown gets the keys: its main table takes the focus."""
        spec = BY_ID.get(event.pane.id or "")
        table = spec.main_table if spec else ""
        if table:
            self.query_one(table).focus()
        self._render()

    def _refresh_header(self) -> None:
        ts = self.shown.latest.ts if self.shown else None
        replay = None
        if (source := self.source.replay) is not None:
            replay = ReplayState(self._shown_position, len(source.samples), source.speed, source.playing)
        behind = None
        if self._back and self.shown is not None and self._past:
            behind = self._past[-1].latest.ts - self.shown.latest.ts
        text = header_text(
            self.source.info,
            ts,
            self.interval,
            self.source.live,
            self.paused,
            replay,
            behind,
            self.timeline.scope.text,
        )
        if self.recorder is not None:
            text.append(f"  ● REC {self.recorder.path.name} ({self.recorder.samples})", style="bold red")
        shown = self.shown.latest if self.shown else None
        if shown is not None and self.source.live and shown.interval_s > STRETCHED * self.interval:
            # The reading could not finish in time: the figures are over this longer interval.
            text.append(f"  this interval took {shown.interval_s:.2f}s", style="bold yellow")
        if shown is not None and shown.read_failed:
            # A counter could not be read: its counts come with the next read (spans), no findings.
            text.append(f"  could not read {', '.join(shown.read_failed)}", style="bold yellow")
        if self.samples_dropped:
            text.append(f"  {self.samples_dropped} samples dropped: the screen was busy", style="bold yellow")
        show_text(self._header, text)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        """Pausing freezes what is on screen, so only the header changes; resuming shows the
        newest view."""
        self.paused = not self.paused
        if not self.paused:
            self._take_view()
            self._render()
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
        self._arm_exit(0)
        self.exit(0)

    def _handle_exception(self, error: Exception) -> None:
        """An exception in a pane or worker: detach, leave the terminal clean, and let the CLI
        print one line (the traceback goes to the log). Under Pilot, tests see the exception. A
        worker's (the sampler builds the views) is its own exception, not Textual's wrapper."""
        if isinstance(error, WorkerFailed) and isinstance(error.error, Exception):
            error = error.error
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
        gc.enable()
        if self.recorder is not None:
            self.recorder.close()
        self.source.close()


def make_app(
    source: Source,
    interval: float = 1.0,
    interfaces: tuple[str, ...] = (),
    netns: str | None = None,
    flow_filter: Filter | None = None,
    flows_top: int | None = FLOWS_TOP,
    lookback: int = LOOKBACK,
) -> NetscopeApp:
    """The app over any source; a live source's probes come up in workers after the first frame,
    those of the view on screen first.
    `interfaces` and `netns` narrow the Rings pane, `flow_filter` the flows; `lookback`: the views
    kept to look back at."""
    return NetscopeApp(source, interval, interfaces, netns, flow_filter, flows_top, lookback)
