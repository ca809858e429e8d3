"""tracefs: mount it when missing, and tell whether a tracepoint exists on this kernel.

Why: some machines boot without tracefs mounted, and `ip netns exec` gives a fresh /sys without it.
Raw tracepoints attach without tracefs, so its absence is only fatal for classic tracepoints; a
tracepoint's existence can also be read from BTF (`btf_trace_<name>` typedefs).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from netscope.probes.btf import KIND_TYPEDEF, BTFError, kernel_btf

TRACEFS = Path("/sys/kernel/tracing")
DEBUGFS_TRACING = Path("/sys/kernel/debug/tracing")


def events_dir() -> Path | None:
    for root in (TRACEFS, DEBUGFS_TRACING):
        if (root / "events").is_dir():
            return root / "events"
    return None


def ensure_tracefs() -> str | None:
    """Mount tracefs if it is not mounted. Returns None when usable, else why it is not."""
    if events_dir() is not None:
        return None
    if not TRACEFS.is_dir():
        return f"{TRACEFS} does not exist (no tracefs in this kernel?)"
    proc = subprocess.run(
        ["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or events_dir() is None:
        return (
            f"tracefs is not mounted and mounting it failed ({proc.stderr.strip() or 'no events'}); "
            f"run as root: mount -t tracefs nodev {TRACEFS}"
        )
    return None


def tracepoint_exists(category: str, name: str) -> bool:
    """True when `category:name` exists: tracefs first, else the BTF typedef raw tracepoints use."""
    events = events_dir()
    if events is not None:
        return (events / category / name).is_dir()
    try:
        return kernel_btf().has(KIND_TYPEDEF, f"btf_trace_{name}")
    except BTFError:
        return True  # cannot tell; attaching will say


def tracepoint_fields(category: str, name: str) -> frozenset[str] | None:
    """The fields of `category:name` as its tracefs format names them (a raw tracepoint's args
    follow its prototype, which those fields mirror); None when tracefs cannot tell."""
    events = events_dir()
    try:
        text = (events / category / name / "format").read_text() if events is not None else None
    except OSError:
        return None
    if text is None:
        return None
    fields = (
        line.split(";")[0].split()[-1] for line in text.splitlines() if line.strip().startswith("field:")
    )
    return frozenset(f.split("[")[0] for f in fields)
