from __future__ import annotations

from netscope.probes.headers import distro_candidates


def test_debian_pairs_arch_with_common_and_prefers_nearest_version() -> None:
    names = [
        "linux-headers-5.10.0-30-amd64",
        "linux-headers-5.10.0-30-common",
        "linux-headers-6.1.0-56-amd64",
        "linux-headers-6.1.0-56-common",
        "linux-kbuild-6.1",
    ]
    got = distro_candidates(names, "6.18.44-fc-v595", ("amd64", "generic"))
    assert got == [
        ("linux-headers-6.1.0-56-amd64", "linux-headers-6.1.0-56-common"),
        ("linux-headers-5.10.0-30-amd64", "linux-headers-5.10.0-30-common"),
    ]


def test_ubuntu_generic_pairs_with_its_base_tree() -> None:
    names = ["linux-headers-6.8.0-45", "linux-headers-6.8.0-45-generic"]
    assert distro_candidates(names, "6.8.0-45-generic", ("amd64", "generic")) == [
        ("linux-headers-6.8.0-45-generic", "linux-headers-6.8.0-45")
    ]


def test_other_architectures_are_ignored() -> None:
    assert distro_candidates(["linux-headers-6.1.0-56-arm64"], "6.1.0", ("amd64",)) == []
