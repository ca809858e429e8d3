"""The CPU pane: per-CPU hardirq, NET_RX/NET_TX softirq and NAPI activity, and the busiest IRQ lines."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from netscope.model.cpu import CpuRow, CpuView, IrqRow
from netscope.model.timeline import ViewModel
from netscope.panes import BY_ID
from netscope.ui.drill import Drill, DrillScreen
from netscope.ui.format import NO_DATA, fmt_count, fmt_ns, fmt_pct, fmt_ratio, sparkline
from netscope.ui.pane import Pane
from netscope.ui.widgets import Column, FitsWidth, TrendLine, estimated, fit_columns, set_columns

CPU_COLUMNS: tuple[Column[CpuRow], ...] = (
    Column("hirq/s", 7, 1, lambda r: fmt_count(r.hardirqs_per_s), "hardware interrupts handled per second"),
    Column("hirq%", 5, 3, lambda r: fmt_pct(r.hardirq_time_pct), "% of the CPU in hardirq handlers"),
    Column("RX rais/s", 9, 3, lambda r: fmt_count(r.net_rx_raises_per_s), "NET_RX softirq raises per second"),
    Column("RX run/s", 8, 1, lambda r: fmt_count(r.net_rx_runs_per_s), "NET_RX softirq runs per second"),
    Column("TX run/s", 8, 2, lambda r: fmt_count(r.net_tx_runs_per_s), "NET_TX softirq runs per second"),
    Column(
        "sirq%",
        5,
        1,
        lambda r: fmt_pct(r.softirq_time_pct),
        "% of the CPU in softirqs, all vectors (/proc/stat)",
    ),
    Column(
        "RX%",
        6,
        2,
        lambda r: estimated(fmt_pct(r.net_rx_time_pct), r.softirq_rate),
        "% of the CPU in the NET_RX softirq (from sampled runs: ~)",
    ),
    Column(
        "RX wait",
        8,
        2,
        lambda r: estimated(fmt_ns(r.net_rx_wait_avg_ns), r.softirq_rate),
        "NET_RX raise-to-run delay, average (of sampled raises: ~)",
    ),
    Column(
        "wait max",
        9,
        1,
        lambda r: estimated(fmt_ns(r.net_rx_wait_max_ns), r.softirq_rate),
        "NET_RX raise-to-run delay, maximum (of sampled raises: ~)",
    ),
    Column(
        "polls/s",
        8,
        1,
        lambda r: estimated(fmt_count(r.napi_polls_per_s), r.napi_rate),
        "NAPI polls per second (from sampled polls: ~)",
    ),
    Column(
        "pkt/poll",
        8,
        1,
        lambda r: estimated(fmt_ratio(r.napi_packets_per_poll), r.napi_rate),
        "packets per NAPI poll",
    ),
    Column(
        "budget%",
        7,
        2,
        lambda r: estimated(fmt_pct(r.napi_budget_exhausted_pct), r.napi_rate),
        "% of NAPI polls that used the whole budget",
    ),
    Column(
        "sqz/s",
        5,
        1,
        lambda r: fmt_count(r.time_squeeze_per_s),
        "softnet time_squeeze per second: NET_RX ran out of budget or time",
    ),
    Column(
        "drop/s",
        6,
        1,
        lambda r: fmt_count(r.backlog_drops_per_s),
        "softnet backlog drops per second (netdev_max_backlog full)",
    ),
)

MIN_TREND = 12


def _rows(view: CpuView) -> tuple[CpuRow, ...]:
    return (*view.rows, view.total)


class CpuSelected(Drill):
    def __init__(self, cpu: int) -> None:
        super().__init__()
        self.cpu = cpu

    def screen(self, shown: ViewModel) -> DrillScreen:
        from netscope.ui.cpu_screen import CpuScreen  # it lists flows: imported when opened

        return CpuScreen(self.cpu, shown)


class CpuPane(Pane, FitsWidth, Vertical):
    """Per-CPU table above the busiest-IRQ table. Renders a CpuView; never reads the kernel."""

    IRQ_ROWS = 8
    SPEC = BY_ID["cpus"]

    def __init__(self) -> None:
        super().__init__(id="cpu-pane")
        self.border_title = "CPUs"
        self._columns: tuple[Column[CpuRow], ...] = ()
        self._trend = 0
        self._irq_cpus: tuple[int, ...] | None = None
        self._history: Sequence[CpuView] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="cpus-probes")
        yield TrendLine("NET_RX runs/s, all CPUs", lambda v: f"{fmt_count(v)}/s", id="cpus-trend")
        cpu_table: DataTable[str | Text] = DataTable(id="cpu-table", cursor_type="row", zebra_stripes=True)
        yield cpu_table
        yield Static(Text("Busiest IRQ lines (per second)", style="bold"), id="irq-title")
        irq_table: DataTable[str | Text] = DataTable(id="irq-table", cursor_type="row", zebra_stripes=True)
        yield irq_table

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a CPU: the flows it received."""
        event.stop()
        if event.data_table.id == "cpu-table" and self._history:
            rows = self._history[-1].rows
            cpu = rows[event.cursor_row].cpu if 0 <= event.cursor_row < len(rows) else None
            if cpu is not None:  # not the 'all' row
                self.post_message(CpuSelected(cpu))

    def refit(self) -> None:
        if self._history:
            self.show_history(self._history)

    def show(self, shown: ViewModel) -> None:
        self.show_history(shown.cpu_history)

    def show_history(self, history: Sequence[CpuView]) -> None:
        """Render the newest view; older ones (oldest first) feed the NET_RX trend column."""
        self._history = history
        net_rx = [v.total.net_rx_runs_per_s for v in history]
        self.query_one("#cpus-trend", TrendLine).show([r for r in net_rx if r is not None])
        self._show_cpus(history)
        self._show_irqs(history[-1])

    def _show_cpus(self, history: Sequence[CpuView]) -> None:
        view = history[-1]
        table: DataTable[str | Text] = self.query_one("#cpu-table", DataTable)
        width = self.fitted_width(200)
        columns = fit_columns(CPU_COLUMNS, width, reserved=7)
        # Whatever width is left shows the NET_RX runs/s trend, one character per interval.
        trend = width - 7 - sum(c.width + 2 for c in columns) - 4
        trend = trend if trend >= MIN_TREND else 0
        if (columns, trend) != (self._columns, self._trend):
            extra = [(f"NET_RX runs/s, last {trend} intervals", trend)] if trend else []
            set_columns(table, ("CPU", 4), columns, extra)
            self._columns, self._trend = columns, trend
        cursor = table.cursor_row
        table.clear()
        for index, row in enumerate((*view.rows, view.total)):
            bold = "bold" if row.cpu is None else ""
            label = Text("all", style="bold") if row.cpu is None else str(row.cpu)
            cells = [c.cell(row, bold) for c in columns]
            if trend:
                series = [
                    _rows(v)[index].net_rx_runs_per_s if index < len(_rows(v)) else None for v in history
                ]
                cells.append(Text(sparkline(series, trend), style="cyan"))
            table.add_row(label, *cells)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

    def _show_irqs(self, view: CpuView) -> None:
        table: DataTable[str | Text] = self.query_one("#irq-table", DataTable)
        if self._irq_cpus != view.cpus:
            table.clear(columns=True)
            table.add_column("IRQ", width=4)
            table.add_column("name", width=18)
            table.add_column("device", width=8)
            table.add_column("queue", width=8)
            table.add_column(Text("total/s", justify="right"), width=8)
            for cpu in view.cpus:
                table.add_column(Text(f"CPU{cpu}/s", justify="right"), width=8)
            table.add_column(Text("time%", justify="right"), width=6)
            self._irq_cpus = view.cpus
        cursor = table.cursor_row
        table.clear()
        busy: list[IrqRow] = [r for r in view.irqs if r.per_s > 0][: self.IRQ_ROWS]
        for r in busy:
            table.add_row(
                str(r.irq),
                r.name,
                r.device or "–",
                r.queue or NO_DATA,
                Text(fmt_count(r.per_s), justify="right"),
                *(Text(fmt_count(v), justify="right") for v in r.per_cpu_per_s),
                Text(fmt_pct(r.time_pct), justify="right"),
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)
