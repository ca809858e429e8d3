"""Kernel tests run as root with BPF; on a machine without either they fail, never skip."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _require_root_and_bcc() -> None:
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root (CI runs as root): they must not be skipped")
    try:
        import bcc  # noqa: F401
    except ImportError as e:
        pytest.fail(f"kernel tests need BCC (python3-bpfcc): {e}")
