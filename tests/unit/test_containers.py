"""Container attribution from cgroup v2 paths, on the paths the runtimes and the kubelet create
(their sources: moby's systemd parent and scope prefix, libpod's, the kubelet's cgroup names)."""

from __future__ import annotations

from dataclasses import replace

from netscope.model.containers import OTHER, Container, ContainerSeries, container_of, unit_of
from netscope.model.counters import RunningTotals
from netscope.model.sample import (
    DropBucket,
    DropReasonCount,
    DropsSample,
    HostInfo,
    LatencySample,
    ProcessFacts,
    ProcLatency,
    Sample,
)

ID = "3f4e5d6c7b8a" + "0" * 52
UID = "0d3a1c6e-8e3b-4a7c-9f2e-1b2c3d4e5f60"


def test_docker_under_systemd_and_cgroupfs() -> None:
    assert container_of(f"/system.slice/docker-{ID}.scope") == Container("docker", ID)
    assert container_of(f"/docker/{ID}") == Container("docker", ID)
    assert container_of(f"/system.slice/docker-{ID}.scope").label == "docker:3f4e5d6c7b8a"  # type: ignore[union-attr]


def test_podman_rootful_rootless_cgroupfs_and_its_monitor() -> None:
    assert container_of(f"/machine.slice/libpod-{ID}.scope") == Container("podman", ID)
    rootless = f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
    assert container_of(rootless) == Container("podman", ID)
    assert container_of(f"/libpod_parent/libpod-{ID}") == Container("podman", ID)
    conmon = container_of(f"/machine.slice/libpod-conmon-{ID}.scope")
    assert conmon == Container("podman", ID, monitor=True) and conmon.label.endswith(" conmon")


def test_kubernetes_pods_by_qos_with_containerd_and_cri_o_under_systemd() -> None:
    escaped = UID.replace("-", "_")
    burstable = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{escaped}.slice"
    assert container_of(f"{burstable}/cri-containerd-{ID}.scope") == Container(
        "containerd", ID, UID, "burstable"
    )
    guaranteed = f"/kubepods.slice/kubepods-pod{escaped}.slice"
    assert container_of(f"{guaranteed}/crio-{ID}.scope") == Container("cri-o", ID, UID, "guaranteed")
    besteffort = f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{escaped}.slice"
    pod = container_of(besteffort)  # the pod's own cgroup (its sandbox's)
    assert pod == Container("kubernetes", "", UID, "besteffort") and pod.label == f"pod {UID} (besteffort)"
    labelled = container_of(f"{burstable}/cri-containerd-{ID}.scope")
    assert labelled is not None and labelled.label == "containerd:3f4e5d6c7b8a (pod 0d3a1c6e, burstable)"


def test_kubernetes_pods_under_cgroupfs() -> None:
    assert container_of(f"/kubepods/burstable/pod{UID}/{ID}") == Container("cri", ID, UID, "burstable")
    assert container_of(f"/kubepods/pod{UID}/{ID}") == Container("cri", ID, UID, "guaranteed")


def test_outside_containers_the_systemd_unit_or_the_path() -> None:
    for path in (
        "/system.slice/ssh.service",
        "/user.slice/user-0.slice/session-3.scope",
        "/",
        "/netscope-test",
    ):
        assert container_of(path) is None
    assert unit_of("/system.slice/ssh.service") == "ssh.service"
    assert unit_of("/user.slice/user-0.slice/session-3.scope") == "session-3.scope"
    assert unit_of("/netscope-test/a") == "/netscope-test/a"
    assert unit_of("") == "/"
    assert container_of(f"/{ID}") is None  # an id with no runtime's parent is no container


def test_the_export_s_container_series_are_bounded_kept_until_gone_and_the_rest_are_other() -> None:
    series = ContainerSeries(max_series=2, gone_s=60.0)
    assert [series.label(c, 0.0) for c in ("a", "b", "c")] == ["a", "b", OTHER]
    assert series.label("c", 30.0) == OTHER and series.label("a", 30.0) == "a"  # no slot free yet
    # b not seen for 60 s: gone, its slot goes to the next container seen (c's earlier counts stay
    # in other, which only grows)
    assert series.label("c", 61.0) == "c" and series.labels() == {"a", "c"}
    assert series.label("b", 62.0) == OTHER


def test_where_the_source_tells_each_container_s_end_an_idle_one_keeps_its_series() -> None:
    series = ContainerSeries(max_series=2, gone_s=60.0)
    series.ends_told()
    assert [series.label(c, 0.0) for c in ("a", "b", "c")] == ["a", "b", OTHER]
    assert series.label("c", 3600.0) == OTHER  # a and b idle for an hour, alive: theirs stay
    series.end("b")  # its cgroup removed
    assert series.label("c", 3601.0) == "c" and series.labels() == {"a", "c"}
    assert series.label("b", 3602.0) == OTHER


def test_running_totals_count_reads_and_drops_per_container_and_only_increase() -> None:
    facts = (
        ProcessFacts(10, "nginx", f"/system.slice/docker-{ID}.scope", 1, 1),
        ProcessFacts(20, "sshd", "/system.slice/ssh.service", 1, 1),
    )
    latency = LatencySample(
        (ProcLatency(10, "nginx", 100, 6400, 0, (), 0), ProcLatency(20, "sshd", 5, 50, 0, (), 0)), (), 0
    )
    rcvbuf = DropsSample(
        (DropReasonCount(7, "SOCKET_RCVBUFF", "", (30,)),),
        (DropBucket(7, 0, "udp_queue_rcv_one_skb+0x1", 0x0800, 2, "eth0", 1, (30,), sk_ino=77),),
        (),
        0,
        0,
        0,
        0,
        1000,
    )
    sample = Sample(
        ts=1000.0, interval_s=1.0, softirq_names=(), irq_lines=(), softnet=(), probes=(),
        latency=latency, drops=rcvbuf, processes=facts, socket_pids=((77, 10),),
    )  # fmt: skip
    totals = RunningTotals(HostInfo("box", "6.18", (0,), 0.0))
    totals.add(sample)
    totals.add(replace(sample, ts=1001.0))
    docker = f"docker:{ID[:12]}"
    assert dict(totals.containers) == {
        (docker, "reads"): 200,
        (docker, "read_bytes"): 12800,
        (docker, "drops:SOCKET_RCVBUFF"): 60,
    }  # sshd is in no container: no series
    # Its cgroup removed: its series ends (an instant's counts of a container gone go nowhere).
    totals.add(replace(sample, ts=1002.0, latency=None, drops=None, cgroups_gone=(facts[0].cgroup,)))
    assert not totals.containers and not totals._series.labels()
