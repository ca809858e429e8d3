"""Readings too dear for every interval, and the RPS masks they include."""

from __future__ import annotations

from pathlib import Path

import pytest

from netscope.sources import live, procfs


def test_every_reads_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: now[0])
    reads: list[float] = []

    def read() -> float:
        reads.append(now[0])
        return now[0]

    every = live.Every(5.0, read)
    assert every.get() == 100.0  # the first call reads
    now[0] = 104.9
    assert every.get() == 100.0 and reads == [100.0]
    now[0] = 105.0
    assert every.get() == 105.0 and reads == [100.0, 105.0]


def test_rps_masks_name_the_queues_that_steer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queues = (("eth0", "rx-0", "0"), ("eth0", "rx-1", "00000000,00000002"), ("veth1", "rx-0", "3"))
    for dev, queue, mask in queues:
        path = tmp_path / "class" / "net" / dev / "queues" / queue
        path.mkdir(parents=True)
        (path / "rps_cpus").write_text(mask + "\n")
    monkeypatch.setattr(procfs, "SYS", tmp_path)
    assert procfs.read_rps_masks() == (
        ("rps_cpus:eth0/rx-1", "00000000,00000002"),
        ("rps_cpus:veth1/rx-0", "3"),
    )
