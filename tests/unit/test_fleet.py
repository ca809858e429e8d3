"""What ships for a fleet cannot drift from what `export` serves: the committed dashboard and rules
are what scripts/dashboards.py writes; every metric they use is served; every metric served is in
the README's table, and nothing else is."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml
from prometheus_client.parser import text_string_to_metric_families

from netscope.prometheus import Exporter
from netscope.sources.recording import read_recording

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "veth-traffic.nsrec"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", ROOT / "scripts" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def served() -> set[str]:
    """Every metric family the export serves, fed the recorded fixture."""
    rec = read_recording(FIXTURE)
    exporter = Exporter(rec.info, 1.0)
    for sample in rec.samples:
        exporter.add(sample)
    text = b"".join(exporter.app({"PATH_INFO": "/metrics"}, lambda *_: None)).decode()
    return {family.name for family in text_string_to_metric_families(text)}


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def expand(pattern: str) -> list[str]:
    """`netscope_device_{rx,tx}_packets_total` -> both names."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def test_the_committed_dashboard_and_rules_are_what_the_script_writes() -> None:
    dashboards = generator()
    assert (ROOT / "dashboards" / "netscope.json").read_text() == dashboards.dashboard_text()
    assert (ROOT / "dashboards" / "alerts.yml").read_text() == dashboards.rules_text()


def test_every_metric_the_dashboard_and_rules_use_is_served() -> None:
    board = json.loads((ROOT / "dashboards" / "netscope.json").read_text())
    exprs = [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    rules = yaml.safe_load((ROOT / "dashboards" / "alerts.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [a for g in rules["groups"] for r in g["rules"] for a in r.get("annotations", {}).values()]
    used = {family(m) for e in exprs for m in re.findall(r"(?<![\w:])netscope_[a-z0-9_]+", e)}
    assert used and used <= served(), sorted(used - served())
    # Each recording rule is used by an alert; every alert names its knob.
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert recorded <= {m for a in alerts for m in recorded if m in a["expr"]}
    assert all("Knob:" in a["annotations"]["description"] for a in alerts)
    # Rows in receive-path order.
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "NIC",
        "Hardirq",
        "Softirq and NAPI",
        "Stack",
        "Socket and copy",
        "TX",
        "netscope's own cost",
    ]


def test_the_readme_table_is_every_metric_served() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Prometheus export") : readme.index("## Many machines")]
    documented = {
        family(name)
        for row in table.splitlines()
        if row.startswith("| `netscope_")
        for pattern in re.findall(r"`(netscope_[^`]+)`", row.split("|")[1])
        for name in expand(pattern)
    }
    assert documented == served(), (sorted(served() - documented), sorted(documented - served()))
