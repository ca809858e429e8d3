"""A real Prometheus (Debian's package, installed by `make test`) scrapes `netscope export` every
second, both on loopback; the export is started as contrib/netscope-export.service starts it (its
ExecStart and environment file). The truth is the kernel's own counters, read by the test.

Prometheus's raw samples (instant queries of the counters, not an extrapolated increase()) must
move as the kernel's counters do; every query of dashboards/netscope.json returns data; the rules
of dashboards/alerts.yml load, and a NO_SOCKET storm makes its alert pending or firing; the scrape
answers within 100 ms under a flood, as Prometheus itself measures the scrape."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.netns import VethPair, flood_result, flood_udp, snmp
from harness.tmux import REPO, wait_for
from tests.kernel import truth
from tests.kernel.test_export import free_port

SUBNET = 79
UNIT = REPO / "contrib" / "netscope-export.service"
ENV_FILE = REPO / "contrib" / "netscope-export.env"
DASHBOARD = REPO / "dashboards" / "netscope.json"
RULES = REPO / "dashboards" / "alerts.yml"
CLOSED_PORT = 9  # nobody listens: every datagram is a NO_SOCKET drop


@dataclass(frozen=True)
class Stack:
    prometheus: str  # http://127.0.0.1:PORT
    metrics: str  # netscope's /metrics
    instance: str  # the scrape target, as Prometheus labels it


def unit_command(listen: str) -> list[str]:
    """The unit's ExecStart as systemd would run it with the shipped environment file, but with
    this checkout's netscope and `listen`: ${VAR} is one word, $VAR splits into words."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys as written
    unit.read(UNIT)
    env = dict(
        line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if line and not line.startswith("#")
    )
    env["NETSCOPE_LISTEN"] = listen
    line = unit["Service"]["ExecStart"]
    line = re.sub(r"\$\{(\w+)\}", lambda m: shlex.quote(env[m.group(1)]), line)
    line = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], line)
    argv = shlex.split(line)
    assert argv[0] == "/usr/local/bin/netscope", argv
    return [sys.executable, "-m", "netscope", *argv[1:]]


def api(stack: Stack, path: str, **params: str) -> Any:
    url = f"{stack.prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return answer["data"]


def instant(stack: Stack, query: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": query} | ({"time": f"{at:.3f}"} if at is not None else {})
    result: list[dict[str, Any]] = api(stack, "query", **params)["result"]
    return result


def value(stack: Stack, query: str, at: float | None = None) -> float:
    result = instant(stack, query, at)
    assert len(result) == 1, (query, result)
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = shutil.which("prometheus")
    if prometheus is None:  # never a skip: `make test` installs it
        pytest.fail("prometheus is not installed: `make test` installs Debian's prometheus package")
    where = tmp_path_factory.mktemp("prometheus")
    port, prom_port = free_port(), free_port()
    target = f"127.0.0.1:{port}"
    export = subprocess.Popen(unit_command(target), cwd=REPO, stderr=subprocess.PIPE, text=True)
    config = where / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [{"job_name": "netscope", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={where / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    s = Stack(f"http://127.0.0.1:{prom_port}", f"http://{target}/metrics", target)
    try:
        assert export.stderr is not None
        line = export.stderr.readline()
        assert "serving Prometheus metrics" in line, line

        def scraped() -> bool:
            try:
                return bool(instant(s, 'up{job="netscope"} == 1 and on() netscope_bpf_cpu_ratio'))
            except OSError:
                return False

        # Up, and bpf_stats has measured once (one interval in ten).
        wait_for(scraped, 60, "Prometheus scraping netscope export")
        yield s
    finally:
        server.terminate()
        export.terminate()
        server.wait(20)
        assert export.wait(20) == 128 + 15  # SIGTERM: detached and out


def test_the_rules_load_and_a_no_socket_storm_raises_its_alert(stack: Stack, pair: VethPair) -> None:
    """promtool passes the rules; Prometheus loads them healthy; a storm of NO_SOCKET drops makes
    NetscopeNoSocketDrops pending (it fires after its `for`). First in the module: no drop before."""
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    groups = api(stack, "rules")["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert {"NetscopeNoSocketDrops", "NetscopeBacklogDrops", "NetscopeSilentLoss"} <= loaded
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups

    def alert_state() -> str:
        alerts = api(stack, "alerts")["alerts"]
        return next((a["state"] for a in alerts if a["labels"]["alertname"] == "NetscopeNoSocketDrops"), "")

    assert alert_state() == ""  # the first NO_SOCKET drops of this Prometheus's life come now
    flood = flood_udp(pair, 6.0, CLOSED_PORT, pps=20_000)
    try:
        wait_for(lambda: alert_state() in ("pending", "firing"), 20, "NetscopeNoSocketDrops pending")
        alerts = api(stack, "alerts")["alerts"]
    finally:
        flood.kill()
        flood.wait()
    storm = next(a for a in alerts if a["labels"]["alertname"] == "NetscopeNoSocketDrops")
    assert storm["labels"]["instance"] == stack.instance and storm["labels"]["reason"] == "NO_SOCKET"
    assert float(storm["value"]) > 5, storm  # drops/s: past the no_socket finding's threshold


def noports_everywhere(pair: VethPair) -> int:
    """Udp NoPorts of the receiver's namespace and of the box's own (/proc/net/snmp, the test's
    own reading): netscope counts NO_SOCKET drops in every namespace."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    head, values = [row for row in lines if row[0] == "Udp:"]
    own = int(dict(zip(head[1:], values[1:], strict=True))["NoPorts"])
    return snmp(pair.receiver_ns)["NoPorts"] + own


def settled_in_prometheus(stack: Stack, read_kernel: Any) -> tuple[int, float]:
    """The kernel's counter once quiet, and a moment by which Prometheus has scraped netscope's
    totals including it (a whole interval counted after it, then a scrape)."""
    kernel = truth.settled(read_kernel)
    start = value(stack, "netscope_intervals_total")
    wait_for(lambda: value(stack, "netscope_intervals_total") >= start + 2, 15, "two intervals scraped")
    return kernel, time.time()


def test_prometheus_raw_samples_move_as_the_kernels_counters(stack: Stack, pair: VethPair) -> None:
    """A flood to a closed port: the raw NO_SOCKET counter Prometheus stored, at an instant
    before and one after, moved by the kernel's NoPorts within 1%; the receiving queue's packets by
    the veth's stats64. Prometheus's own scrape timing stays under 100 ms during the flood."""
    drops = 'netscope_skb_drops_total{reason="NO_SOCKET"}'
    queue = f'netscope_queue_rx_packets_total{{device="{pair.receiver_dev}",netns="{pair.receiver_ns}"}}'
    flood_result(flood_udp(pair, 0.2, CLOSED_PORT, pps=1000))  # the namespace and the reason exist
    noports0, at0 = settled_in_prometheus(stack, lambda: noports_everywhere(pair))
    link0 = truth.link_packets(pair.receiver_ns, pair.receiver_dev)[0]
    flood_start = time.time()
    flood = flood_udp(pair, 4.0, CLOSED_PORT, pps=60_000)
    healthy = []
    while flood.poll() is None:
        with urllib.request.urlopen(stack.metrics.replace("/metrics", "/-/healthy"), timeout=5) as r:
            healthy.append(r.status)
        time.sleep(0.5)
    sent, _ = flood_result(flood)
    flood_end = time.time()
    noports1, at1 = settled_in_prometheus(stack, lambda: noports_everywhere(pair))
    link1 = truth.link_packets(pair.receiver_ns, pair.receiver_dev)[0]
    kernel = noports1 - noports0
    assert kernel >= sent > 100_000, (kernel, sent)
    stored = value(stack, drops, at1) - value(stack, drops, at0)
    assert abs(stored - kernel) <= 0.01 * kernel, (stored, kernel)
    packets = value(stack, queue, at1) - value(stack, queue, at0)
    assert abs(packets - (link1 - link0)) <= 0.01 * (link1 - link0), (packets, link1 - link0)
    assert healthy and set(healthy) == {200}
    # Prometheus's own measure of each scrape during the flood.
    window = f"{max(1, round(flood_end - flood_start))}s"
    slowest = value(stack, f'max_over_time(scrape_duration_seconds{{job="netscope"}}[{window}])', flood_end)
    scrapes = value(stack, f'count_over_time(scrape_duration_seconds{{job="netscope"}}[{window}])', flood_end)
    print(
        f"sent {sent}, NoPorts +{kernel}, stored NO_SOCKET +{stored:.0f}; veth rx +{link1 - link0}, stored "
        f"queue +{packets:.0f}; {scrapes:.0f} scrapes in the flood, slowest {slowest * 1000:.1f} ms"
    )
    assert scrapes >= 3 and slowest < 0.1, (scrapes, slowest)


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


def test_every_dashboard_query_returns_data(stack: Stack, pair: VethPair) -> None:
    """Each panel's expression, with the dashboard's variables set as Grafana would (this
    instance, every CPU and device), evaluated in Prometheus during traffic: never empty."""
    queries = dashboard_queries()
    assert len(queries) > 20
    names = {v["name"] for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert names == {"datasource", "instance", "cpu", "device"}
    flood = flood_udp(pair, 5.0, CLOSED_PORT, pps=20_000)
    try:
        time.sleep(3.5)  # a few scrapes of the flood for rate() over the window
        empty = []
        for title, expr in queries:
            q = expr.replace("$instance", stack.instance).replace("$cpu", ".+").replace("$device", ".+")
            q = q.replace("$__rate_interval", "5s")
            assert "$" not in q, q
            if not instant(stack, q):
                empty.append((title, q))
        assert not empty, f"dashboard queries with no data: {empty}"
    finally:
        flood_result(flood)


def test_the_unit_file_verifies_with_this_netscope(tmp_path: Path) -> None:
    """systemd-analyze verify on the shipped unit, its ExecStart pointed at this checkout's
    netscope (the one thing an installation changes)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (the systemd package) is needed"
    netscope = Path(sys.executable).parent / "netscope"
    assert netscope.exists(), netscope
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/netscope", str(netscope)))
    check = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read(UNIT)
    caps = set(service["Service"]["CapabilityBoundingSet"].split())
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"} <= caps
    assert service["Service"]["Restart"] == "on-failure" and service["Service"]["ProtectSystem"] == "strict"
