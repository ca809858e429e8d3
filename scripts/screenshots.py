"""Save an SVG of every screen into screenshots/, rendered by the app itself from the recorded fixture.

Run with `make screenshots`. The recording was captured from a real kernel (tests/fixtures).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from netscope.app import NetscopeApp, make_app
from netscope.sources.recording import read_recording
from netscope.sources.replay import ReplaySource

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "veth-traffic.nsrec"
OUT = ROOT / "screenshots"


async def first_sample(app: NetscopeApp) -> None:
    for _ in range(250):
        if app.latest is not None:
            return
        await asyncio.sleep(0.02)
    raise SystemExit("no sample arrived from the recording")


async def main() -> None:
    os.environ["TZ"] = "UTC"
    OUT.mkdir(exist_ok=True)
    app = make_app(ReplaySource(read_recording(FIXTURE)))
    async with app.run_test(size=(140, 36)) as pilot:
        await first_sample(app)
        await pilot.press("p")
        await pilot.pause()
        app.save_screenshot("cpu.svg", str(OUT))
        await pilot.press("d")
        await pilot.pause()
        app.save_screenshot("drops.svg", str(OUT))
        await pilot.press("enter")
        await pilot.pause()
        app.save_screenshot("drop-reason.svg", str(OUT))
        await pilot.press("escape", "r")
        await pilot.pause()
        app.save_screenshot("rings.svg", str(OUT))
        await pilot.press("l")
        await pilot.pause()
        app.save_screenshot("latency.svg", str(OUT))
        await pilot.press("question_mark")
        await pilot.pause()
        app.save_screenshot("help.svg", str(OUT))
    for name in ("cpu.svg", "drops.svg", "drop-reason.svg", "rings.svg", "latency.svg", "help.svg"):
        print(OUT / name)


if __name__ == "__main__":
    asyncio.run(main())
