"""An exception inside a pane or inside the sampling worker: netscope stops, every BPF program it
loaded is freed and kernel.bpf_stats is back as it was (bpftool and /proc/sys say so)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.tmux import new_programs, program_ids, programs_of, wait_for
from netscope import app as app_module
from netscope.app import make_app
from netscope.panes import BY_ID
from netscope.sources import bpf_cost
from netscope.sources.live import LiveSource
from netscope.ui.cpu_pane import CpuPane

BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def boom(*_args: Any) -> None:
    raise RuntimeError("boom (a test's injected failure)")


@pytest.mark.parametrize("where", ["pane", "worker"])
async def test_an_exception_detaches_every_program(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before, stats = program_ids(), BPF_STATS.read_text()
    BPF_STATS.write_text("0")
    # bpf_stats on for every interval (netscope's default is one in ten), so that the crash comes
    # while netscope has it on and the test sees it put back
    monkeypatch.setattr(bpf_cost, "STATS_EVERY", 1)
    app = make_app(LiveSource(), interval=0.5)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            async with app.run_test(size=(120, 40)) as pilot:
                deadline = time.monotonic() + 30
                attached = programs_of(*BY_ID["home"].probes)
                while new_programs(before) < attached or BPF_STATS.read_text().strip() != "1":
                    assert time.monotonic() < deadline, "the probes did not attach, or bpf_stats is not on"
                    await pilot.pause(0.1)
                if where == "pane":
                    monkeypatch.setattr(CpuPane, "show", boom)  # the next render of the CPUs pane
                    await pilot.press("c")
                else:
                    monkeypatch.setattr(app_module.Timeline, "add", boom)  # the sampler's next sample
                await pilot.pause(2.0)
        assert isinstance(app.crash, RuntimeError)
        wait_for(lambda: new_programs(before) == 0, 3, "every program to be freed")
        assert BPF_STATS.read_text().strip() == "0"
    finally:
        BPF_STATS.write_text(stats)
