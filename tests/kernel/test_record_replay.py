"""Record as root, replay as nobody: `replay --json` prints exactly the lines `record --json` printed
live, and a copy cut off mid-frame replays its complete frames and says what was left over."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.netns import UDP_SENDER, VethPair, in_ns
from harness.tmux import REPO

SUBNET = 70
NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "HOME=/nonexistent")


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m netscope ARGS` as the unprivileged user nobody: no root, no BPF."""
    return subprocess.run(
        [*NOBODY, sys.executable, "-m", "netscope", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can read (pytest's tmp_path is root's own)."""
    path = Path(tempfile.mkdtemp(prefix="netscope-replay-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_record_as_root_replay_as_nobody(pair: VethPair, shared_dir: Path) -> None:
    recording = shared_dir / "five.nsrec"
    sender = in_ns(pair.sender_ns, UDP_SENDER, pair.receiver_ip, "60", "9")  # NO_SOCKET drops
    try:
        live = subprocess.run(
            [
                sys.executable,
                "-m",
                "netscope",
                "record",
                "-o",
                str(recording),
                "-n",
                "5",
                "-i",
                "0.5",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
    finally:
        sender.kill()
        sender.wait()
    assert live.returncode == 0, live.stderr
    lines = live.stdout.splitlines()
    assert len(lines) == 5
    drops = [{d["reason"]: d["count"] for d in json.loads(line)["drops"]} for line in lines]
    assert all(d.get("NO_SOCKET", 0) > 100 for d in drops), drops  # real traffic was recorded
    recording.chmod(0o644)

    probe = as_nobody("--version")
    assert probe.returncode == 0, f"nobody cannot run netscope from {REPO}: {probe.stderr}"
    replay = as_nobody("replay", str(recording), "--json")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines() == lines
    assert "Traceback" not in replay.stderr

    cut = shared_dir / "cut.nsrec"
    cut.write_bytes(recording.read_bytes()[:-50])  # the last frame loses its end
    cut.chmod(0o644)
    replay = as_nobody("replay", str(cut), "--json")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines() == lines[:4]
    assert "incomplete frame" in replay.stderr


def test_a_full_disk_ends_the_recording_with_a_clear_error(shared_dir: Path) -> None:
    """A 64 KiB tmpfs fills after a few intervals: exit 2 naming the file and the error, no
    traceback, and what was written replays."""
    mount = shared_dir / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        recording = mount / "full.nsrec"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "netscope",
                "record",
                "-o",
                f"{recording}",
                "-i",
                "0.2",
                "--duration",
                "60",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=90,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "No space left on device" in result.stderr and str(recording) in result.stderr
        assert "Traceback" not in result.stderr
        replay = subprocess.run(
            [sys.executable, "-m", "netscope", "replay", f"{recording}", "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert replay.returncode == 0 and len(replay.stdout.splitlines()) >= 3, replay.stderr
    finally:
        subprocess.run(["umount", str(mount)], check=False)
