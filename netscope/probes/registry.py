"""Every probe netscope has, in the order compiles are granted when several wait: what the live
source makes, attaches and polls (each probe says which Sample field it fills and whether the flow
filter is compiled into it)."""

from __future__ import annotations

from typing import Any

from netscope.probes.base import Probe
from netscope.probes.drops import DropsProbe
from netscope.probes.flows import FlowsProbe
from netscope.probes.hardirq import HardirqProbe
from netscope.probes.latency import LatencyProbe
from netscope.probes.napi import NapiProbe
from netscope.probes.qdisc import QdiscProbe
from netscope.probes.rings import RingsProbe
from netscope.probes.send import SendProbe
from netscope.probes.softirq import SoftirqProbe
from netscope.probes.stack import StackProbe
from netscope.probes.tcp import TcpProbe

PROBE_CLASSES: tuple[type[Probe[Any]], ...] = (
    HardirqProbe,
    SoftirqProbe,
    NapiProbe,
    DropsProbe,
    RingsProbe,
    LatencyProbe,
    SendProbe,
    StackProbe,
    FlowsProbe,
    TcpProbe,
    QdiscProbe,
)
BY_NAME = {c.name: c for c in PROBE_CLASSES}
PROBES = tuple(BY_NAME)
FILTERED = tuple(c.name for c in PROBE_CLASSES if c.filtered)  # the probes a flow filter is compiled into
