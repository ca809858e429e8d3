"""What is looked up by walking /proc or the cgroup hierarchy: looked up together, at most so
often, and forgotten when no longer asked for; a cgroup id is its v2 directory's inode."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import pytest

from netscope.sources import lookup
from netscope.sources.lookup import LookupCache
from netscope.sources.procfs import cgroup_paths


def test_a_key_never_looked_for_is_looked_for_at_once_one_not_found_again_only_so_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(lookup.time, "monotonic", lambda: now[0])
    looks: list[list[int]] = []
    table = {1: "a", 2: "b"}

    def look(keys: Collection[int]) -> dict[int, str]:
        looks.append(sorted(keys))
        return {k: table[k] for k in keys if k in table}

    cache = LookupCache(look, every_s=2.0, kept_s=30.0)
    assert cache.get({1, 3}) == {1: "a"} and looks == [[1, 3]]
    now[0] += 0.5
    assert cache.get({1, 2, 3}) == {1: "a", 2: "b"} and looks[-1] == [2]  # 2 at once, not 3 again
    now[0] += 0.5
    assert cache.get({1, 2, 3}) == {1: "a", 2: "b"} and len(looks) == 2  # 3 missed 1 s ago
    table[3] = "c"
    now[0] += 1.0
    assert cache.get({3}) == {3: "c"} and looks[-1] == [3]  # 2 s since 3 was missed
    now[0] += 30.0
    assert cache.get({2}) == {2: "b"} and len(looks) == 3  # 1 and 3 not asked for in 30 s: forgotten
    table[1] = "d"
    assert cache.get({1}) == {1: "d"} and looks[-1] == [1]


def test_a_key_not_found_and_no_longer_asked_for_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(lookup.time, "monotonic", lambda: now[0])
    looks: list[list[int]] = []

    def look(keys: Collection[int]) -> dict[int, str]:
        looks.append(sorted(keys))
        return {}

    cache = LookupCache(look, every_s=2.0, kept_s=30.0)
    assert cache.get({7}) == {}
    now[0] += 31.0
    assert cache.get({8}) == {} and looks == [[7], [8]]
    assert cache.get({7}) == {} and looks[-1] == [7]  # forgotten, so never looked for: at once


def test_a_failed_look_finds_nothing() -> None:
    def look(keys: Collection[int]) -> dict[int, str]:
        raise PermissionError("/proc/1/fd")

    assert LookupCache(look, 1.0, 10.0).get({1}) == {}


def test_a_cgroup_id_is_the_inode_of_its_directory_its_path_as_proc_writes_it(tmp_path: Path) -> None:
    (tmp_path / "system.slice" / "docker-ab.scope").mkdir(parents=True)
    (tmp_path / "user.slice").mkdir()
    scope = os.stat(tmp_path / "system.slice" / "docker-ab.scope").st_ino
    user = os.stat(tmp_path / "user.slice").st_ino
    root = os.stat(tmp_path).st_ino
    assert cgroup_paths({scope, user, root, 1}, tmp_path) == {
        scope: "/system.slice/docker-ab.scope",
        user: "/user.slice",
        root: "/",
    }
