"""UI tests run over a recording captured from a real kernel (tests/fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netscope.sources.recording import Recording, read_recording

FIXTURES = Path(__file__).parent.parent / "fixtures"

# Snapshot output depends on these: pin them.
os.environ["TZ"] = "UTC"
os.environ.pop("NO_COLOR", None)
os.environ["TERM"] = "xterm-256color"


@pytest.fixture
def recording() -> Recording:
    return read_recording(FIXTURES / "veth-traffic.nsrec")
