"""Bad input and missing pieces: one clear line on stderr and a documented exit code."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from netscope import cli
from netscope.sources.recording import read_recording

FIXTURE = Path(__file__).parent.parent / "fixtures" / "veth-traffic.nsrec"


def test_live_commands_need_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (["snapshot", "--json"], [], ["record", "-o", "/nonexistent/x"]):
        assert cli.main(argv) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert "needs root" in err and "replay" in err and "Traceback" not in err


def test_missing_bcc_names_the_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["snapshot"]) == cli.EXIT_KERNEL
    assert "python3-bpfcc" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["snapshot", "--interval", "0"],
        ["snapshot", "--count", "-1"],
        ["snapshot", "--detail-every", "0"],
        ["snapshot", "--sample", "0"],
        ["tui", "--sample", str(cli.MAX_RATE + 1)],
        ["nope"],
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == cli.EXIT_USAGE
    capsys.readouterr()


def test_replay_json_prints_one_object_per_recorded_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", str(FIXTURE), "--json"]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    recording = read_recording(FIXTURE)
    assert len(lines) == len(recording.samples)
    first = json.loads(lines[0])
    assert first["host"] == recording.info.host
    assert first["interval_s"] == round(recording.samples[0].interval_s, 6)


@pytest.mark.parametrize(
    "content", [b"garbage", random.Random(7).randbytes(65536), b"NSF1" + random.Random(8).randbytes(9000)]
)
def test_corrupt_recording_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    bad = tmp_path / "bad.nsrec"
    bad.write_bytes(content)
    for args in (["replay", str(bad)], ["replay", str(bad), "--json"]):
        assert cli.main(args) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert "netscope recording" in err or "truncated or corrupt" in err
        assert "Traceback" not in err


def test_truncated_recording_replays_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.nsrec"
    cut.write_bytes(FIXTURE.read_bytes()[:-7])
    assert cli.main(["replay", str(cut), "--json"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == len(read_recording(FIXTURE).samples) - 1
    assert "incomplete frame" in captured.err


def test_the_tui_is_the_default_command_with_its_options() -> None:
    args = cli.parse_args(["--no-bpf", "-i", "2"])
    assert (args.command, args.no_bpf, args.interval) == ("tui", True, 2.0)
    assert cli.parse_args([]).command == "tui"
    snap = cli.parse_args(["snapshot", "--no-bpf"])
    assert (snap.command, snap.no_bpf, snap.detail_every) == ("snapshot", True, cli.DETAIL_EVERY)
    assert snap.sample is None  # the rate adapts to the budget unless forced
    assert cli.parse_args(["--sample", "100"]).sample == 100
    assert (
        cli.parse_args(["export", "--sample", "10"]).sections
        == cli.DEFAULT_SECTIONS
        == ("drops", "latency", "tcp")
    )


def test_max_rate_is_the_models() -> None:
    from netscope.model.sampling import MAX_RATE

    assert cli.MAX_RATE == MAX_RATE  # the CLI does not import the model, to load light


@pytest.mark.parametrize(
    ("argv", "top"),
    [
        (["tui"], 500),  # the TUI's flow lists
        (["tui", "--top", "50"], 50),
        (["snapshot", "--json"], 100),  # a JSON line
        (["snapshot", "--top", "0"], None),  # every flow
        (["record", "-o", "x.nsrec"], 500),  # what the TUI lists when it is replayed
        (["record", "-o", "x.nsrec", "--json"], 500),
        (["replay", "x.nsrec"], 500),
        (["replay", "x.nsrec", "--json"], 100),
    ],
)
def test_flows_kept_in_full(argv: list[str], top: int | None) -> None:
    assert cli._top(cli.parse_args(argv)) == top


def test_the_filter_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One Filter object, parsed from the command line before anything else, serves every part of a
    command (here a replay's JSON lines: the kernel's C expression and the Python predicate are its
    two faces)."""
    from netscope.model import filter as flt

    parsed = []
    real = flt.parse_filter

    def counting(text: str) -> flt.Filter:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(flt, "parse_filter", counting)
    assert cli.main(["replay", str(FIXTURE), "--json", "--filter", "udp"]) == 0
    assert parsed == ["udp"]
    assert capsys.readouterr().out.count("\n") > 1
