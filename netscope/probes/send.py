"""Send probe (bpf_src/send.bpf.c): sends and bytes sent per process, and the cgroup it sent from
(the Processes pane's TX). A sendmsg per datagram is per packet: sampled and duty-cycled as the
other per-packet hooks are, attached only while a view shows it."""

from __future__ import annotations

from typing import Any

from netscope.model.sample import ProcSend
from netscope.probes.base import Alive, Probe, drop_keys, map_max, process_gone

SEND_PROCS = 4096  # processes followed
Totals = dict[int, tuple[str, int, int, int]]  # tgid -> comm, sends, bytes, cgroup id


class SendProbe(Probe[tuple[ProcSend, ...]]):
    name = "send"
    sample_field = "sends"
    source_file = "send.bpf.c"
    tracepoints = (("sock", "sock_send_length"),)
    per_packet = ("sock_send_length",)
    sampled = True
    scoped = True  # a process out of the user's scope is left out in the kernel
    full_map = "send_full"

    def defines(self) -> dict[str, int | str]:
        return {"NS_SEND_PROCS": map_max(SEND_PROCS)}

    def prune_keys(self, bpf: Any, totals: Totals, alive: Alive) -> None:
        table = bpf[b"send_by_proc"]
        drop_keys(table, totals, process_gone, table.Key)

    def read_totals(self, bpf: Any) -> Totals:
        totals: Totals = {}
        for k, values in bpf[b"send_by_proc"].items():
            comm = next((v.comm.decode(errors="replace") for v in values if v.comm), "")
            cgroup = max((int(v.cgroup_id) for v in values), default=0)
            totals[int(k.value)] = (
                comm,
                sum(int(v.sends) for v in values),
                sum(int(v.bytes) for v in values),
                cgroup,
            )
        return totals

    def delta(self, previous: Totals, current: Totals) -> tuple[ProcSend, ...]:
        out = []
        for pid, (comm, sends, nbytes, cgroup) in sorted(current.items()):
            _, sends0, bytes0, _ = previous.get(pid, (comm, 0, 0, 0))
            if sends < sends0:  # its entry pruned (the process gone) and made again by a new one
                sends0 = bytes0 = 0
            if sends > sends0:
                out.append(ProcSend(pid, comm, sends - sends0, nbytes - bytes0, cgroup))
        return tuple(out)
