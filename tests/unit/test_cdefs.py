"""The constants both sides share come from bpf_src/netscope.h: its defines are read whole, the
stats arrays' slot names come in index order, and the pure model's copy of the latency bucket bits
is the header's."""

from __future__ import annotations

import pytest

from netscope.model import latency
from netscope.probes import cdefs


def test_integer_defines_are_evaluated_with_the_names_before_them() -> None:
    d = cdefs.defines()
    assert (
        d["NS_LAT_PROC_BUCKETS"] == (d["NS_LAT_OCTAVES"] - d["NS_LAT_PROC_BITS"] + 1) << d["NS_LAT_PROC_BITS"]
    )
    assert d["NS_QUEUE_UNKNOWN"] == 0xFFFF
    assert "NS_CAT" not in d  # a function-like macro is no integer


def test_stats_slots_are_named_in_index_order() -> None:
    assert cdefs.stats("DROP") == ("logged", "suppressed", "lost", "details_full", "reasons_full")
    assert cdefs.stats("STACK") == ("followed", "unfollowed")
    with pytest.raises(KeyError):
        cdefs.stats("NONE")


def test_the_models_bucket_bits_are_the_headers() -> None:
    assert cdefs.define("LAT_PROC_BITS") == latency.PROC_BITS
    assert cdefs.define("LAT_SOCK_BITS") == latency.SOCK_BITS


def test_a_gap_in_a_stats_array_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdefs, "defines", lambda: {"NS_X_STAT_A": 0, "NS_X_STAT_B": 2, "NS_X_STATS": 3})
    with pytest.raises(ValueError, match=r"number 0\.\.2"):
        cdefs.stats("X")
