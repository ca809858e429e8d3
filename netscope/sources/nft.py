"""nftables rules that drop, with their counters: where the NETFILTER_DROP finding points.

Read with `nft -j list ruleset` only while the kernel reports NETFILTER_DROP drops, and at most
every `NFT_EVERY_S` (running nft costs a process start): in netscope's own network namespace and,
through `nsenter --net`, in each other namespace where the drops happened.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

NFT_EVERY_S = 5.0


def parse_drop_rules(text: str, netns: str = "") -> tuple[tuple[str, str], ...]:
    """('nft_drop:inet netscope_test input #2', 'packets 3000') for each rule whose verdict is drop
    (' in netns NAME' after the handle for another namespace's ruleset); the counter reads
    'no counter' when the rule has none."""
    out = []
    where_ns = f" in netns {netns}" if netns else ""
    for item in json.loads(text).get("nftables", []):
        rule: dict[str, Any] | None = item.get("rule") if isinstance(item, dict) else None
        if rule is None:
            continue
        exprs = rule.get("expr", [])
        if not any(isinstance(e, dict) and "drop" in e for e in exprs):
            continue
        counter = next((e["counter"] for e in exprs if isinstance(e, dict) and "counter" in e), None)
        where = (
            f"nft_drop:{rule.get('family')} {rule.get('table')} {rule.get('chain')} #{rule.get('handle')}"
            + where_ns
        )
        out.append((where, f"packets {counter['packets']}" if counter else "no counter"))
    return tuple(out)


def read_drop_rules(netns: str = "", enter: str = "") -> tuple[tuple[str, str], ...]:
    """The drop rules of netscope's namespace's ruleset, or of namespace `netns` entered through
    the path `enter`; none when nft (or nsenter) is missing or fails."""
    nft, nsenter = shutil.which("nft"), shutil.which("nsenter")
    if nft is None or (enter and nsenter is None):
        return ()
    inside = (str(nsenter), f"--net={enter}") if enter else ()
    try:
        done = subprocess.run(
            [*inside, nft, "-j", "list", "ruleset"], capture_output=True, text=True, timeout=2, check=False
        )
        return parse_drop_rules(done.stdout, netns) if done.returncode == 0 and done.stdout else ()
    except (OSError, subprocess.SubprocessError, ValueError):
        return ()
