"""The flow list holds only the rows in sight: a window over all its flows that the keys and the
wheel move, the cursor on the same flow when new data comes, and Enter opens the flow under it."""

from __future__ import annotations

import dataclasses

from textual.app import App, ComposeResult
from textual.events import MouseScrollDown

from netscope.model.flows import FlowRow, build_flows_view
from netscope.model.sample import FlowCount, FlowsSample, HostInfo
from netscope.ui.flows_pane import FlowChosen, FlowList
from netscope.ui.format import fmt_count
from tests.unit.samples import two_cpu_sample

OWN = 4026531840
INFO = HostInfo("box", "6.18", (0, 1), 0.0, netns=OWN)
FLOWS = 500
HEIGHT = 20  # the table's: a header and 19 rows


def rows(rate: int = 0) -> tuple[FlowRow, ...]:
    """500 flows, the busiest first (port 20000 + i sends 10_000 - i packets, plus `rate`)."""
    src, dst = "10.200.0.1", "10.200.0.2"
    flows = tuple(
        FlowCount(OWN, 4, 17, src, 20000 + i, dst, 9, 10_000 - i + rate, 640, (1,), (), (), 0, 0)
        for i in range(FLOWS)
    )
    sample = dataclasses.replace(two_cpu_sample(), flows=FlowsSample(flows, 0, ""))
    view = build_flows_view(sample, INFO)
    assert view is not None and len(view.rows) == FLOWS
    return view.rows


class Flows(App[None]):
    CSS = f"FlowList {{ height: {HEIGHT}; }}"

    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[int] = []

    def compose(self) -> ComposeResult:
        yield FlowList("flows", "test")

    def on_flow_chosen(self, message: FlowChosen) -> None:
        self.chosen.append(message.row.flow.sport)


async def test_only_the_rows_in_sight_and_the_keys_move_them() -> None:
    app = Flows()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(FlowList)
        table.show(rows(), 1.0)
        await pilot.pause()
        assert table.row_count == HEIGHT - 1 and len(table.rows_shown) == FLOWS
        table.focus()
        for _ in range(HEIGHT + 5):  # past the window's last row: the window follows
            await pilot.press("down")
        assert table.cursor_index == HEIGHT + 5 and table.row_count == HEIGHT - 1
        assert table.get_row_at(table.cursor_row)[0] == table.rows_shown[HEIGHT + 5].label
        keys = list(table.rows)
        table.show(rows(rate=5000), 1.0)  # new data, updated in place: the cursor stays on its row
        await pilot.pause()
        assert list(table.rows) == keys  # the same rows of the table, their cells updated
        assert table.cursor_index == HEIGHT + 5 and table.row_count == HEIGHT - 1
        shown = [table.get_row_at(y) for y in range(table.row_count)]
        assert [str(r[0]) for r in shown] == [r.label for r in table.rows_shown[table._top :][: HEIGHT - 1]]
        now = table.rows_shown[table.cursor_index].rx_pps  # (10,000 - 25 + 5,000) / the interval
        assert str(shown[table.cursor_row][1]).strip() == fmt_count(now) != fmt_count(now - 5000 / 2)
        await pilot.press("end")
        assert table.cursor_index == FLOWS - 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.chosen == [20000 + FLOWS - 1]
        await pilot.press("ctrl+home")
        assert table.cursor_index == 0
        await pilot.press("pagedown")
        assert table.cursor_index == HEIGHT - 1
        table.post_message(MouseScrollDown(table, 10, 5, 0, 1, 0, False, False, False))  # the wheel
        await pilot.pause()
        assert table.cursor_index == HEIGHT - 1 + FlowList.WHEEL_ROWS
        await pilot.press("enter")
        await pilot.pause()
        assert app.chosen[-1] == 20000 + HEIGHT - 1 + FlowList.WHEEL_ROWS
