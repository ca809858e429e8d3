"""Probes compiled together (one compiler run, one BPF object): each attaches, counts and goes on
its own; a probe whose C does not compile fails alone (the others are compiled again, apart)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.tmux import new_programs, program_ids, programs_of, wait_for
from netscope.model.sample import ProbeState
from netscope.probes.base import start_probes
from netscope.probes.hardirq import HardirqProbe
from netscope.probes.headers import find_headers
from netscope.probes.napi import NapiProbe
from netscope.sources import procfs


class BrokenNapi(NapiProbe):
    def defines(self) -> dict[str, int | str]:
        return {**super().defines(), "NS_OFF_NAPI_DEV": "("}  # a syntax error in napi.bpf.c only


@contextmanager
def started(napi_class: type[NapiProbe]) -> Iterator[tuple[HardirqProbe, NapiProbe, set[int]]]:
    """irq and a napi probe compiled together; both closed (and their programs freed) after."""
    before = program_ids()
    cpus = procfs.read_host_info().cpus
    irq, napi = HardirqProbe(cpus), napi_class(cpus)
    try:
        start_probes((irq, napi), find_headers())
        yield irq, napi, before
    finally:
        irq.close()
        napi.close()
    wait_for(lambda: new_programs(before) == 0, 2, "every program to be freed")


def test_probes_share_one_object_and_leave_it_one_by_one() -> None:
    with started(NapiProbe) as (irq, napi, before):
        assert (irq.status.state, napi.status.state) == (ProbeState.LIVE, ProbeState.LIVE)
        assert irq._module is not None and irq._module is napi._module
        assert new_programs(before) == programs_of("hardirq", "napi")
        napi.close()  # its programs go; irq's stay attached and counting
        wait_for(lambda: new_programs(before) == programs_of("hardirq"), 2, "napi's program to be freed")
        assert irq.poll() is not None and irq.status.state == ProbeState.LIVE


def test_a_probe_that_does_not_compile_fails_alone() -> None:
    with started(BrokenNapi) as (irq, napi, before):
        assert irq.status.state == ProbeState.LIVE
        assert napi.status.state == ProbeState.FAILED and "napi.bpf.c" in napi.status.error
        assert new_programs(before) == programs_of("hardirq")
