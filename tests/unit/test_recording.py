"""Recordings: round trip through the codec, truncation and corruption are told, not crashed on."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

import pytest

from netscope.model.sample import HostInfo, Sample
from netscope.sources.codec import from_plain, to_plain
from netscope.sources.recording import (
    RecordingError,
    RecordingFull,
    RecordingWriter,
    encode_frame,
    read_recording,
)
from tests.unit.samples import two_cpu_sample

INFO = HostInfo("box", "6.18.44", (0, 1), 1_699_000_000.0)


def write(samples: list[Sample]) -> bytes:
    out = io.BytesIO()
    writer = RecordingWriter(out, INFO, {"cpu_count": 2})
    for s in samples:
        writer.write(s)
    return out.getvalue()


def test_codec_round_trip() -> None:
    for sample in (two_cpu_sample(), two_cpu_sample(live=False)):
        assert from_plain(Sample, to_plain(sample)) == sample


def test_recording_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.nsrec"
    path.write_bytes(write([two_cpu_sample(), two_cpu_sample(interval_s=1.0)]))
    rec = read_recording(path)
    assert rec.info == INFO
    assert rec.samples == (two_cpu_sample(), two_cpu_sample(interval_s=1.0))
    assert rec.incomplete_bytes == 0


def test_cut_off_recording_replays_the_complete_frames(tmp_path: Path) -> None:
    data = write([two_cpu_sample(), two_cpu_sample()])
    path = tmp_path / "cut.nsrec"
    path.write_bytes(data[:-10])
    rec = read_recording(path)
    assert len(rec.samples) == 1
    assert rec.incomplete_bytes > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello world", "not a netscope recording"),
        (random.Random(1).randbytes(4096), "not a netscope recording"),
        (b"NSF1" + random.Random(2).randbytes(4096), "header frame is truncated or corrupt"),
        (b"NSF1\x05", "header frame is truncated"),
        (encode_frame({"format": "netscope-recording", "version": 99, "host": {}}), "version 99"),
        (encode_frame({"something": "else"}), "not a netscope recording header"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.nsrec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        read_recording(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        read_recording(tmp_path / "nope.nsrec")


def test_samples_that_do_not_fit_the_host_are_rejected(tmp_path: Path) -> None:
    sample = two_cpu_sample()
    assert sample.hardirq is not None
    bad = dataclasses.replace(
        sample, hardirq=tuple(dataclasses.replace(c, per_cpu=c.per_cpu[:1]) for c in sample.hardirq)
    )
    path = tmp_path / "shape.nsrec"
    path.write_bytes(write([bad]))
    with pytest.raises(RecordingError, match="per-CPU counts for 2 CPUs"):
        read_recording(path)


def test_max_size_stops_before_a_frame_would_pass_it(tmp_path: Path) -> None:
    path = tmp_path / "small.nsrec"
    with path.open("wb") as out:
        writer = RecordingWriter(out, INFO, {}, max_bytes=4096)
        with pytest.raises(RecordingFull):
            for _ in range(1000):
                writer.write(two_cpu_sample())
    assert 0 < writer.written <= 4096 and path.stat().st_size == writer.written
    rec = read_recording(path)
    assert len(rec.samples) == writer.samples > 0 and rec.incomplete_bytes == 0
