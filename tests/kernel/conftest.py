"""Kernel tests run as root with BPF; on a machine without either they fail, never skip."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from netscope.model.sample import ProbeState
from netscope.sources.live import PROBES, LiveSource
from tests.kernel.netns import VethPair, veth_pair


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
def live() -> Iterator[LiveSource]:
    """The live source with every probe attached (and detached after the module)."""
    source = LiveSource()
    try:
        for start in source.need(PROBES):
            start()
        states = {s.name: (s.state, s.error) for s in source.statuses()}
        assert all(state == ProbeState.LIVE for state, _ in states.values()), states
        yield source
    finally:
        source.close()
