"""Kernel tests run as root with BPF; on a machine without either they fail, never skip."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from harness.netns import VethPair, veth_pair
from netscope.model.sample import ProbeState
from netscope.sources.live import PROBES, LiveSource


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _namespaces_cleaned_up() -> None:
    """A run stopped by SIGTERM (a timeout, CI's own) unwinds like Ctrl-C, so every test's
    `finally` deletes its namespaces; and the namespaces of an earlier run that was killed outright
    (its pid gone) are deleted before this one starts."""
    signal.signal(signal.SIGTERM, _interrupted)
    alive = {int(p.name) % 100000 for p in Path("/proc").iterdir() if p.name.isdigit()}
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in listed:
        m = re.fullmatch(r"nst[AB](\d+)\D*\d*", name)
        if m and int(m.group(1)) not in alive:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def _require_root_and_bcc() -> None:
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root (CI runs as root): they must not be skipped")
    try:
        import bcc  # noqa: F401
    except ImportError as e:
        pytest.fail(f"kernel tests need BCC (python3-bpfcc): {e}")


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest) -> Iterator[VethPair]:
    """Two namespaces joined by veth, on the module's own 10.200.<SUBNET>.0/24."""
    with veth_pair(subnet=request.module.SUBNET) as p:
        yield p


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest) -> Iterator[LiveSource]:
    """The live source with every probe attached (and detached after the module); a module's
    SAMPLE_RATE, when it has one, forces every probe's rate (--sample N)."""
    source = LiveSource(sample_rate=getattr(request.module, "SAMPLE_RATE", None))
    try:
        for start in source.need(PROBES):
            start()
        states = {s.name: (s.state, s.error) for s in source.statuses()}
        assert all(state == ProbeState.LIVE for state, _ in states.values()), states
        yield source
    finally:
        source.close()
