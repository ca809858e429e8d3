"""A probe that cannot start says why, names what is missing, and never raises."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from netscope.cli import Terminated
from netscope.model.sample import ProbeState
from netscope.probes import headers as H
from netscope.probes import tracefs as T
from netscope.probes.base import Probe, start_probes
from netscope.probes.btf import BTFError, kernel_btf
from netscope.probes.headers import HeadersError, KernelHeaders


class MissingTracepointProbe(Probe[int]):
    name = "missing"
    source_file = "napi.bpf.c"
    tracepoints = (("napi", "napi_poll"), ("irq", "netscope_no_such_tracepoint"))

    def read_totals(self, bpf: Any) -> Mapping[Any, Any]:
        return {}

    def delta(self, previous: Mapping[Any, Any], current: Mapping[Any, Any]) -> int:
        return 0


def test_missing_tracepoint_fails_that_probe_with_its_name() -> None:
    probe = MissingTracepointProbe((0,))
    start_probes((probe,), KernelHeaders("build", Path("/nonexistent"), ""))
    assert probe.status.state == ProbeState.FAILED
    assert "irq:netscope_no_such_tracepoint does not exist" in probe.status.error
    assert "needs a kernel that has it (bpf_src/napi.bpf.c" in probe.status.error
    assert "the other probes still run" in probe.status.error
    assert probe.poll() is None
    probe.close()


def test_no_btf_says_which_kernel_option_and_what_still_works(tmp_path: Path) -> None:
    with pytest.raises(BTFError) as e:
        kernel_btf(tmp_path / "vmlinux")
    assert "CONFIG_DEBUG_INFO_BTF=y" in str(e.value)
    assert "the interrupt probe and the /proc counters work without it" in str(e.value)


def test_tracefs_not_mountable_says_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No tracefs mounted (`ip netns exec` without /sys/kernel/tracing) and mount refused."""
    monkeypatch.setattr(T, "TRACEFS", tmp_path)
    monkeypatch.setattr(T, "DEBUGFS_TRACING", tmp_path / "debug")
    refused = subprocess.CompletedProcess(["mount"], 32, "", "mount: permission denied")
    monkeypatch.setattr(T.subprocess, "run", lambda *a, **k: refused)
    note = T.ensure_tracefs()
    assert note is not None
    assert "mount: permission denied" in note
    assert f"mount -t tracefs nodev {tmp_path}" in note


def test_no_headers_anywhere_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(H, "KHEADERS", tmp_path / "kheaders.tar.xz")
    monkeypatch.setattr(H, "DISTRO_HEADERS", tmp_path / "src")
    with pytest.raises(HeadersError, match=r"linux-headers-9\.9\.9-test"):
        H.find_headers("9.9.9-test")


def test_distro_headers_are_merged_into_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "linux-headers-6.1.0-9-common" / "include" / "linux").mkdir(parents=True)
    (src / "linux-headers-6.1.0-9-common" / "include" / "linux" / "a.h").write_text("common")
    (src / "linux-headers-6.1.0-9-amd64" / "arch" / "x86").mkdir(parents=True)
    (src / "linux-headers-6.1.0-9-amd64" / "include" / "generated").mkdir(parents=True)
    monkeypatch.setattr(H, "KHEADERS", tmp_path / "none")
    monkeypatch.setattr(H, "DISTRO_HEADERS", src)
    monkeypatch.setattr(H, "_arch_flavours", lambda: ("amd64",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = H.find_headers("6.2.0-test")
    assert found.kind == "distro"
    assert found.path.is_relative_to(tmp_path / "cache" / "netscope")
    assert (found.path / "include" / "linux" / "a.h").read_text() == "common"
    assert (found.path / "arch" / "x86").is_dir()
    assert found.env == {"BCC_KERNEL_SOURCE": str(found.path)}


def test_compile_lock_serves_the_lowest_rank_first() -> None:
    import threading
    import time

    from netscope.probes.base import CompileLock

    lock = CompileLock()
    order: list[int] = []
    started = threading.Event()

    def holder() -> None:
        with lock.priority(0):
            started.set()
            time.sleep(0.2)  # the others queue up meanwhile

    def waiter(rank: int) -> None:
        with lock.priority(rank):
            order.append(rank)

    first = threading.Thread(target=holder)
    first.start()
    started.wait()
    waiters = [threading.Thread(target=waiter, args=(rank,)) for rank in (4, 2, 3, 1)]
    for w in waiters:
        w.start()
        time.sleep(0.02)
    for t in (first, *waiters):
        t.join(5)
    assert order == [1, 2, 3, 4]


def test_a_signal_while_hooks_attach_stops_netscope_rather_than_failing_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM raises Terminated in the main thread wherever it is, here in a duty cycle's attach,
    whose `except Exception` fails the probe: Terminated must pass it by and unwind (`export` once
    lost every probe this way, and kept serving)."""
    probe = MissingTracepointProbe((0,))
    probe._module = SimpleNamespace(bpf=object())  # type: ignore[assignment]

    def attach(tp: str) -> None:
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(probe, "_attach", attach)
    with pytest.raises(Terminated):
        probe.resume()
    assert probe.status.state != ProbeState.FAILED
