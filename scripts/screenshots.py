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
# Keys pressed, then the screen saved: paused on the first sample, each pane and detail in turn.
SCREENS = (
    (("p",), "home.svg"),
    (("c",), "cpu.svg"),
    (("d",), "drops.svg"),
    (("enter",), "drop-reason.svg"),
    (("escape", "r"), "rings.svg"),
    (("l",), "latency.svg"),
    (("t",), "flows.svg"),
    (("enter",), "flow.svg"),
    (("escape", "o"), "processes.svg"),
    (("x", "down"), "tx.svg"),
    (("question_mark",), "help.svg"),
    (("escape", "f"), "findings.svg"),
)

# The smallest terminal netscope supports: the compact home screen.
SMALL_SCREENS = ((("p",), "home-80x24.svg"),)


async def first_sample(app: NetscopeApp) -> None:
    for _ in range(250):
        if app.latest is not None:
            return
        await asyncio.sleep(0.02)
    raise SystemExit("no sample arrived from the recording")


async def main() -> None:
    os.environ["TZ"] = "UTC"
    OUT.mkdir(exist_ok=True)
    for size, screens in (((120, 40), SCREENS), ((80, 24), SMALL_SCREENS)):
        app = make_app(ReplaySource(read_recording(FIXTURE)))
        async with app.run_test(size=size) as pilot:
            await first_sample(app)
            for keys, name in screens:
                await pilot.press(*keys)
                await pilot.pause()
                if name is not None:
                    app.save_screenshot(name, str(OUT))
                    print(OUT / name)


if __name__ == "__main__":
    asyncio.run(main())
