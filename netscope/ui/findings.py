"""Findings: the home screen's strip (worst first) and the full screen (`f`), where Enter drills to
the pane and row that show a finding's evidence."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Click
from textual.message import Message
from textual.widgets import DataTable, Static

from netscope.model.findings import ActiveFinding, Severity
from netscope.model.timeline import ViewModel
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.key_bar import KeyBar
from netscope.ui.widgets import show_text

MARK = {
    Severity.CRITICAL: ("▲ critical", "bold red"),
    Severity.WARNING: ("▲ warning", "yellow"),
    Severity.INFO: ("· info", "dim"),
}
STRIP_ROWS = 3


def strip_text(findings: Sequence[ActiveFinding]) -> Text:
    """'Findings (f)' and the worst few, one per line; a word when there are none."""
    text = Text("Findings ", style="bold")
    text.append("(f)", style="dim")
    if not findings:
        text.append("  none: no stage is losing or holding up packets", style="dim")
        return text
    for a in findings[:STRIP_ROWS]:
        mark, style = MARK[a.finding.severity]
        text.append(f"\n{mark}", style=style)
        text.append(f"  {a.finding.summary}")
        text.append(f"  → {a.finding.knob_now}", style="dim")
    if len(findings) > STRIP_ROWS:
        text.append(f"\n  … {len(findings) - STRIP_ROWS} more: f", style="dim")
    return text


class ShowFindings(Drill):
    """`f`, or a click on the strip: every standing finding."""

    def screen(self, shown: ViewModel) -> DrillScreen:
        return FindingsScreen(shown)


class FindingsStrip(Static):
    def __init__(self) -> None:
        super().__init__(strip_text(()), id="home-findings")

    def show(self, findings: Sequence[ActiveFinding]) -> None:
        show_text(self, strip_text(findings))

    def on_click(self, event: Click) -> None:
        self.post_message(ShowFindings())


def detail_text(a: ActiveFinding) -> Text:
    """Everything about one finding: evidence, knob and its value now, the next step."""
    f = a.finding
    mark, style = MARK[f.severity]
    text = Text(f"{mark}  ", style=style)
    text.append(f.summary, style="bold")
    text.append(f"\nstage: {f.stage}")
    if a.quiet_s:
        text.append(f"   evidence gone for {a.quiet_s:.0f}s (clears after a while)", style="dim")
    text.append("\nevidence: " + ", ".join(f"{k}={v}" for k, v in f.evidence))
    text.append(f"\nknob: {a.finding.knob_now}")
    text.append("\nnext step: ")
    text.append(f.suggestion, style="bold")
    text.append("\nEnter: the pane that shows the evidence", style="dim")
    return text


class FindingChosen(Message):
    def __init__(self, finding: ActiveFinding) -> None:
        super().__init__()
        self.finding = finding


def evidence(finding: ActiveFinding) -> Drill | None:
    """Enter on a finding: the row of its pane that holds its evidence (its target), opened."""
    from netscope.ui.cpu_pane import CpuSelected
    from netscope.ui.drops_pane import ReasonSelected
    from netscope.ui.latency_pane import ProcessSelected
    from netscope.ui.rings_pane import DeviceSelected

    kind, _, what = finding.finding.target.partition(":")
    if kind == "cpu":
        return CpuSelected(int(what))
    if kind == "reason" and what.isdigit():
        return ReasonSelected(int(what))
    if kind == "pid":
        return ProcessSelected(int(what))
    if kind == "device":
        netns, _, ifindex = what.partition(":")
        return DeviceSelected((int(netns), int(ifindex)))
    return None


class FindingsScreen(DrillScreen):
    """Every standing finding, worst first, live; the highlighted one in full below."""

    PROBES = ("hardirq", "drops", "latency", "tcp")  # the evidence of every rule (the rest: counters)

    def __init__(self, shown: ViewModel) -> None:
        super().__init__()
        self._initial = shown
        self._findings: tuple[ActiveFinding, ...] = ()

    def compose(self) -> ComposeResult:
        with Vertical(id="findings-box"):
            yield Static(Text("Findings: the stage, its evidence and the knob (read-only)", style="bold"))
            yield DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="finding-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        table: DataTable[str | Text] = self.query_one(DataTable)
        table.add_columns("severity", "stage", "finding", "knob = now")
        self.update_view(self._initial)
        table.focus()

    def update_view(self, shown: ViewModel) -> None:
        table: DataTable[str | Text] = self.query_one(DataTable)
        chosen = self.chosen()
        self._findings = shown.findings
        table.clear()
        for a in self._findings:
            mark, style = MARK[a.finding.severity]
            table.add_row(
                Text(mark, style=style),
                a.finding.stage,
                a.finding.summary,
                a.finding.knob_now,
                key=a.finding.id,
            )
        if chosen is not None and chosen.finding.id in table.rows:
            table.move_cursor(row=table.get_row_index(chosen.finding.id), animate=False)
        self._show_detail()

    def chosen(self) -> ActiveFinding | None:
        table: DataTable[str | Text] = self.query_one(DataTable)
        if not table.row_count or not 0 <= table.cursor_row < len(self._findings):
            return None
        return self._findings[table.cursor_row]

    def _show_detail(self) -> None:
        chosen = self.chosen()
        detail = (
            detail_text(chosen)
            if chosen
            else Text(
                "No findings: no stage of the receive path is losing or holding up packets now.", style="dim"
            )
        )
        self.query_one("#finding-detail", Static).update(detail)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if (chosen := self.chosen()) is not None:
            self.post_message(FindingChosen(chosen))
