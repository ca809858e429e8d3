"""Readings too dear for every interval, and the RPS masks they include."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netscope.sources import procfs, readings


def test_every_reads_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(readings.time, "monotonic", lambda: now[0])
    reads: list[float] = []

    def read(_namespaces: frozenset[int]) -> float:
        reads.append(now[0])
        return now[0]

    every = readings.Every(5.0, read)
    assert every.get(frozenset()) == 100.0  # the first call reads
    now[0] = 104.9
    assert every.get(frozenset()) == 100.0 and reads == [100.0]
    now[0] = 105.0
    assert every.get(frozenset()) == 105.0 and reads == [100.0, 105.0]
    now[0] = 106.0  # what the reading depends on changed (a namespace came): read at once
    assert every.get(frozenset({7})) == 106.0 and every.get(frozenset({7})) == 106.0
    assert len(reads) == 3


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


def test_rps_masks_of_another_namespace_carry_its_name(tmp_path: Path) -> None:
    path = tmp_path / "class" / "net" / "vb" / "queues" / "rx-0"
    path.mkdir(parents=True)
    (path / "rps_cpus").write_text("2\n")
    assert procfs.read_rps_masks(tmp_path, "ns1") == (("rps_cpus:vb@ns1/rx-0", "2"),)


def test_a_failed_counter_read_does_not_inflate_the_next_rate() -> None:
    """softnet could not be read for one interval: that interval is marked and draws no finding,
    and the next delta (two intervals' drops) is divided by the two intervals it spans."""
    from dataclasses import replace

    from netscope.model.cpu import build_cpu_view
    from netscope.model.findings import find
    from netscope.model.sample import HostInfo, SoftnetCpu
    from netscope.sources.readings import Cumulative, ReadGaps
    from tests.unit.samples import two_cpu_sample

    readings = iter([{0: 0}, OSError("a CPU went away"), {0: 2000}])

    def read() -> dict[int, int]:
        value = next(readings)
        if isinstance(value, Exception):
            raise value
        return value

    gaps = ReadGaps()
    softnet = Cumulative(read, "softnet", gaps)
    gaps.begin()
    assert softnet.step() == ({0: 0}, {}) and gaps.failed == {"softnet"} and gaps.spans == {}
    time.sleep(0.05)
    gaps.begin()
    assert softnet.step() == ({0: 0}, {0: 2000}) and gaps.failed == set()
    assert gaps.spans["softnet"] >= 0.05

    info = HostInfo("box", "6.18", (0, 1), 0.0)
    base = two_cpu_sample(interval_s=1.0)
    dropped = (SoftnetCpu(0, 9000, 2000, 0), SoftnetCpu(1, 0, 0, 0))
    failed = replace(base, softnet=(), read_failed=("softnet",))
    assert find(info, failed) == ()
    after = replace(base, softnet=dropped, spans=(("softnet", 2.0),))
    assert build_cpu_view(after, info.cpus).rows[0].backlog_drops_per_s == 1000.0  # not 2000
    (backlog,) = (f for f in find(info, after) if f.id.startswith("backlog_drops"))
    assert dict(backlog.evidence)["per_s"] == 1000.0 and dict(backlog.evidence)["window_s"] == 2.0
