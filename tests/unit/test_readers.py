"""The collection side's contract: every probe (probes/registry.py) and every counter reader
(sources/kernel_counters.READERS) names the Sample fields it fills; no two fill the same one, and
each is a field of Sample. The flow filter is compiled into the probes that say so, and only those."""

from __future__ import annotations

import dataclasses

from netscope.model.sample import Sample
from netscope.probes.registry import BY_NAME, FILTERED, PROBE_CLASSES
from netscope.sources.kernel_counters import READERS


def test_each_probe_and_reader_fills_its_own_sample_fields() -> None:
    fields = {f.name for f in dataclasses.fields(Sample)}
    filled = [c.sample_field for c in PROBE_CLASSES] + [f for r in READERS for f in r.fields]
    assert len(set(filled)) == len(filled), filled
    assert set(filled) <= fields, set(filled) - fields
    # What LiveSource fills itself: time, devices and their namespace's balance counters (netlink
    # and /proc/net, by namespace), cost, statuses, gaps.
    assert fields - set(filled) == {
        "netns_names",
        "ts",
        "interval_s",
        "probes",
        "devices",
        "netns_snmp",
        "socket_owners",
        "processes",
        "socket_pids",
        "cgroups",
        "container_names",
        "cgroups_gone",
        "cost",
        "detail_every",
        "detail_measured",
        "tunables",
        "spans",
        "read_failed",
    }


def test_the_flow_filter_goes_into_the_probes_that_take_it() -> None:
    assert set(FILTERED) == {"drops", "rings", "latency", "flows"}
    assert len(BY_NAME) == len(PROBE_CLASSES)  # one class a name
