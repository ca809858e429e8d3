"""Find kernel headers for BCC, without writing outside netscope's own cache dir.

Why: BCC compiles every program against kernel headers, which it looks for in
`/lib/modules/$(uname -r)/build`. Many machines (cloud and VM kernels) have no headers package for
the running kernel. Tracepoint programs that read structs only through BTF offsets compile fine
against another version's headers, so netscope falls back, in order, to: the running kernel's build
dir, the kernel's own kheaders archive, and the nearest installed distro headers (Debian splits them
into `-common` and `-<arch>` trees, which are merged into one symlink tree under the cache dir).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

KHEADERS = Path("/sys/kernel/kheaders.tar.xz")
DISTRO_HEADERS = Path("/usr/src")


class HeadersError(Exception):
    """No usable kernel headers: the message says what to install."""


@dataclass(frozen=True)
class KernelHeaders:
    kind: str  # "build" | "kheaders" | "distro"
    path: Path
    note: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for BCC; the running kernel's own build dir needs nothing."""
        return {} if self.kind == "build" else {"BCC_KERNEL_SOURCE": str(self.path)}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "netscope"


def _version_key(release: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        return (0, 0, 0)
    return tuple(int(x or 0) for x in m.groups())


def _arch_flavours() -> tuple[str, ...]:
    machine = os.uname().machine
    return {"x86_64": ("amd64", "generic"), "aarch64": ("arm64", "generic")}.get(machine, (machine,))


def distro_candidates(names: list[str], release: str, flavours: tuple[str, ...]) -> list[tuple[str, str]]:
    """(arch tree, common tree) pairs from directory names under /usr/src, nearest version first.

    Pure: takes the listing. Debian: `linux-headers-6.1.0-56-amd64` + `linux-headers-6.1.0-56-common`.
    Ubuntu: `linux-headers-6.8.0-45-generic` + `linux-headers-6.8.0-45`.
    """
    pairs: list[tuple[tuple[int, ...], str, str]] = []
    present = set(names)
    for name in names:
        m = re.fullmatch(r"linux-headers-(.+)-([a-z0-9_]+)", name)
        if not m or m.group(2) not in flavours:
            continue
        base = m.group(1)
        common = next(
            (c for c in (f"linux-headers-{base}-common", f"linux-headers-{base}") if c in present), ""
        )
        pairs.append((_version_key(base), name, common))
    want = _version_key(release)

    def distance(v: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(abs(a - b) for a, b in zip(want, v, strict=False))

    pairs.sort(key=lambda p: (distance(p[0]), tuple(-x for x in p[0])))
    return [(arch, common) for _, arch, common in pairs]


def _merge_tree(arch: Path, common: Path | None, dest: Path) -> None:
    """Symlink tree: the common tree, overlaid by the arch tree (the measured recipe)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for src in ([common] if common else []) + [arch]:
        subprocess.run(["cp", "-rsf", f"{src}/.", str(tmp)], check=True, capture_output=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _extract_kheaders(dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(KHEADERS) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def find_headers(release: str | None = None) -> KernelHeaders:
    """The best headers for `release` (default: the running kernel), building a cache tree if needed."""
    release = release or os.uname().release
    build = Path(f"/lib/modules/{release}/build")
    if (build / "include").is_dir():
        return KernelHeaders("build", build, f"the running kernel's headers ({build})")
    cache = cache_dir()
    if KHEADERS.exists():
        dest = cache / f"kheaders-{release}"
        if not (dest / "include").is_dir():
            _extract_kheaders(dest)
        return KernelHeaders("kheaders", dest, f"the kernel's own headers ({KHEADERS})")
    names = sorted(p.name for p in DISTRO_HEADERS.glob("linux-headers-*")) if DISTRO_HEADERS.is_dir() else []
    for arch, common in distro_candidates(names, release, _arch_flavours()):
        dest = cache / "headers" / arch
        if not (dest / "include").is_dir() or not (dest / "arch").exists():
            _merge_tree(DISTRO_HEADERS / arch, DISTRO_HEADERS / common if common else None, dest)
        return KernelHeaders(
            "distro",
            dest,
            f"distro headers {arch} for kernel {release} (struct offsets come from BTF, not from them)",
        )
    raise HeadersError(
        f"no kernel headers for BCC: /lib/modules/{release}/build is missing, the kernel has no "
        f"{KHEADERS} (try `modprobe kheaders`), and no linux-headers-* is installed in {DISTRO_HEADERS}. "
        f"Install linux-headers-{release}, or your distribution's nearest headers "
        "(Debian: apt install linux-headers-amd64)."
    )
