"""Recording files: a header frame, then one frame per raw sample.

Frame: b"NSF1", u32 payload length, u32 CRC-32 of the payload, payload = zlib(JSON). Frames are
self-delimiting and checksummed, so a file cut off mid-write (kill -9, disk full) replays every
complete frame and says how many bytes at the end were incomplete.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from netscope.model.sample import HostInfo, Sample, check_shape
from netscope.sources.codec import from_plain, to_plain

MAGIC = b"NSF1"
FORMAT = "netscope-recording"
VERSION = 1
_FRAME = struct.Struct("<4sII")


class RecordingError(Exception):
    """The file is not a readable netscope recording; the message says why."""


class RecordingFull(Exception):
    """The next frame would take the file past its size limit; nothing of it was written."""


@dataclass(frozen=True)
class Recording:
    info: HostInfo
    created: float
    samples: tuple[Sample, ...]
    incomplete_bytes: int  # trailing bytes that did not form a whole frame
    machine: dict[str, Any] = field(default_factory=dict)  # the header's description of the box


def encode_frame(value: Any) -> bytes:
    payload = zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


class RecordingWriter:
    """Frames to `out`; with `max_bytes`, a frame that would pass the limit raises RecordingFull
    instead of being written, so the file always ends on a whole frame."""

    def __init__(
        self, out: IO[bytes], info: HostInfo, machine: dict[str, Any], max_bytes: int | None = None
    ) -> None:
        self._out = out
        self.max_bytes = max_bytes
        self.written = 0
        self.samples = 0
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created": time.time(),
            "host": to_plain(info),
            "machine": machine,
        }
        self._write(header)

    def _write(self, value: Any) -> None:
        frame = encode_frame(value)
        if self.max_bytes is not None and self.written + len(frame) > self.max_bytes:
            raise RecordingFull(f"the next frame would pass {self.max_bytes:,} bytes")
        self._out.write(frame)
        self._out.flush()
        self.written += len(frame)

    def write(self, sample: Sample) -> None:
        self._write(to_plain(sample))
        self.samples += 1


class TuiRecorder:
    """`R` in the TUI: a recording file named after the host and the start time."""

    def __init__(self, path: Path, out: IO[bytes], writer: RecordingWriter) -> None:
        self.path = path
        self._out = out
        self._writer = writer

    @classmethod
    def start(cls, directory: Path, info: HostInfo, machine: dict[str, Any]) -> TuiRecorder:
        """A new file in `directory`; OSError when it cannot be created."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = directory / f"netscope-{info.host}-{stamp}.nsrec"
        out = path.open("xb")
        return cls(path, out, RecordingWriter(out, info, machine))

    @property
    def samples(self) -> int:
        return self._writer.samples

    def write(self, sample: Sample) -> None:
        self._writer.write(sample)

    def close(self) -> None:
        self._out.close()


def _frames(data: bytes) -> tuple[list[Any], int]:
    """Decoded frames and the count of trailing bytes that are not a whole, valid frame."""
    frames = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if magic != MAGIC or end > len(data):
            break
        payload = data[pos + _FRAME.size : end]
        if zlib.crc32(payload) != crc:
            break
        try:
            frames.append(json.loads(zlib.decompress(payload)))
        except (zlib.error, ValueError):
            break
        pos = end
    return frames, len(data) - pos


def read_recording(path: Path) -> Recording:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecordingError(f"cannot read {path}: {e.strerror}") from None
    if not data.startswith(MAGIC):
        raise RecordingError(f"{path} is not a netscope recording (no {MAGIC.decode()} frame at its start)")
    frames, incomplete = _frames(data)
    if not frames:
        raise RecordingError(f"{path}: the header frame is truncated or corrupt")
    header = frames[0]
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path}: the first frame is not a netscope recording header")
    if header.get("version") != VERSION:
        raise RecordingError(
            f"{path}: recording format version {header.get('version')!r}; "
            f"this netscope reads version {VERSION}"
        )
    try:
        info = from_plain(HostInfo, header["host"])
        samples = tuple(from_plain(Sample, f) for f in frames[1:])
        for sample in samples:
            check_shape(sample, info.cpus)
    except (KeyError, ValueError, TypeError) as e:
        raise RecordingError(f"{path}: a frame does not match this netscope's sample layout ({e})") from None
    machine = header.get("machine")
    return Recording(
        info,
        float(header.get("created", 0.0)),
        samples,
        incomplete,
        machine if isinstance(machine, dict) else {},
    )
