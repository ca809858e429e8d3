"""A kernel piece missing on the box: netscope names it and how to get it, and the probes that can
run still run. Here the kernel's BTF is hidden (a tmpfs over /sys/kernel/btf, in a private mount
namespace), as on a kernel built without CONFIG_DEBUG_INFO_BTF."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.tmux import REPO, new_programs, program_ids


def test_no_btf_fails_the_probes_that_need_it_and_keeps_the_rest() -> None:
    before = program_ids()
    hide_btf = 'mount -t tmpfs none /sys/kernel/btf && exec "$@"'
    netscope = (
        sys.executable,
        "-m",
        "netscope",
        "snapshot",
        "--json",
        "-n",
        "2",
        "-i",
        "0.5",
        "--detail-every",
        "1",
    )
    command = ["unshare", "--mount", "sh", "-c", hide_btf, "sh", *netscope]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(objects) == 2
    states = {p["name"]: p for p in objects[-1]["probes"]}
    # Interrupts and softirqs need no struct layout: that probe runs, and counts.
    assert states["hardirq"]["state"] == states["softirq"]["state"] == "live"
    assert any(c["softirq_time_ns"] for c in objects[-1]["cpus"])
    for name in ("napi", "drops", "rings", "latency", "stack", "flows"):
        assert states[name]["state"] == "failed"
        assert "CONFIG_DEBUG_INFO_BTF=y" in states[name]["error"], states[name]
        assert f"probe {name} failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert objects[-1]["snmp"] and objects[-1]["devices"], "the kernel's own counters still come"
    assert new_programs(before) == 0, "every program detached at exit"
