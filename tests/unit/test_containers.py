"""Container attribution from cgroup v2 paths, on the paths the runtimes and the kubelet create
(their sources: moby's systemd parent and scope prefix, libpod's, the kubelet's cgroup names)."""

from __future__ import annotations

from netscope.model.containers import Container, container_of, group_of, unit_of

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
    assert group_of("/user.slice/user-0.slice/session-3.scope") == "session-3.scope"
    assert group_of("/netscope-test/a") == "/netscope-test/a"
    assert group_of("") == "/"
    assert container_of(f"/{ID}") is None  # an id with no runtime's parent is no container
