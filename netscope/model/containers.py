"""Which container a cgroup v2 path is, read from the path alone (no runtime API): the names the
runtimes and the kubelet give their cgroups, as their sources build them.

- docker: with the systemd cgroup driver `system.slice/docker-<id>.scope` (moby: parent
  system.slice, scope prefix docker); with cgroupfs `/docker/<id>`.
- podman (libpod): with systemd `machine.slice/libpod-<id>.scope` (rootless: under the user's
  `user@UID.service`), its monitor in `libpod-conmon-<id>.scope`; with cgroupfs
  `/libpod_parent/libpod-<id>`.
- containerd's CRI plugin `cri-containerd-<id>.scope`, CRI-O `crio-<id>.scope` (its monitor
  `crio-conmon-<id>.scope`), each inside its pod's cgroup.
- kubelet pods: with systemd `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice`,
  the uid's dashes written as underscores, and a Guaranteed pod right under kubepods.slice
  (`kubepods-pod<uid>.slice`); with cgroupfs `/kubepods/<qos>/pod<uid>/<container id>` (Guaranteed:
  `/kubepods/pod<uid>/...`). The QoS class is the slice's: besteffort, burstable, else guaranteed.

A process in no container is shown by its systemd unit (the innermost .service or .scope of its
path), else by its cgroup path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_HEX64 = r"[0-9a-f]{64}"
# (pattern of one path component, runtime): the container's own cgroup.
_SCOPES = (
    (re.compile(rf"^docker-({_HEX64})\.scope$"), "docker"),
    (re.compile(rf"^libpod-({_HEX64})(?:\.scope)?$"), "podman"),
    (re.compile(rf"^cri-containerd-({_HEX64})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_HEX64})\.scope$"), "cri-o"),
)
_MONITORS = re.compile(rf"^(?:libpod|crio)-conmon-({_HEX64})\.scope$")  # a container's monitor
_POD_SYSTEMD = re.compile(r"^kubepods(?:-(besteffort|burstable))?-pod([0-9a-f_]+)\.slice$")
_POD_CGROUPFS = re.compile(r"^pod([0-9a-f-]+)$")
_ID = re.compile(rf"^{_HEX64}$")


@dataclass(frozen=True)
class Container:
    """A container (or a pod's cgroup without one: id empty) as its cgroup path names it."""

    runtime: str  # docker, podman, containerd, cri-o; "kubernetes" for a pod's own cgroup, "cri"
    # for a container in a pod under the cgroupfs driver (its runtime not in the path)
    id: str  # the container id, 64 hex digits ("" for a pod's own cgroup)
    pod_uid: str = ""  # the kubelet pod it is in ("" outside Kubernetes)
    qos: str = ""  # the pod's QoS class: guaranteed, burstable, besteffort
    monitor: bool = False  # the runtime's monitor process of the container (conmon), not the container

    @property
    def short_id(self) -> str:
        """The 12 digits `docker ps` and `podman ps` show."""
        return self.id[:12]

    @property
    def label(self) -> str:
        """How a row names it: runtime and short id, the pod when in one."""
        own = f"{self.runtime}:{self.short_id}" if self.id else f"pod {self.pod_uid}"
        if self.id and self.pod_uid:
            own += f" (pod {self.pod_uid[:8]}, {self.qos})"
        elif not self.id:
            own += f" ({self.qos})"
        return own + (" conmon" if self.monitor else "")

    def name_in(self, names: Mapping[str, str]) -> str:
        """The name the runtime or the kubelet gives it (sources/runtimes.py; "" none known): a
        docker container's, `namespace/pod/container` in a pod, a pod's `namespace/pod`."""
        return (names.get(self.id) if self.id else None) or names.get(self.pod_uid, "")

    def called(self, want: str, names: Mapping[str, str]) -> bool:
        """Whether `want` names it: its id or a prefix of it, `runtime:id` (a prefix), its pod's
        uid or a prefix of it, or its name (a pod's container: `namespace/pod/container`, the
        pod `namespace/pod`, or the pod's or the container's own name)."""
        want = want.lower()
        runtime, _, rest = want.partition(":")
        key = rest if rest and runtime == self.runtime else want
        if key and (
            (bool(self.id) and self.id.startswith(key))
            or (bool(self.pod_uid) and self.pod_uid.startswith(key))
        ):
            return True
        name = self.name_in(names).lower()
        parts = name.split("/")
        return bool(name) and (want == name or want in parts[1:] or want == "/".join(parts[:2]))


def container_of(path: str) -> Container | None:
    """The container a cgroup v2 path (as /proc/PID/cgroup's `0::` line gives it) belongs to, the
    innermost one; None outside any container and pod."""
    parts = [p for p in path.split("/") if p]
    pod_uid = qos = ""
    found: Container | None = None
    for i, part in enumerate(parts):
        if m := _POD_SYSTEMD.match(part):
            qos, pod_uid = m.group(1) or "guaranteed", m.group(2).replace("_", "-")
            found = Container("kubernetes", "", pod_uid, qos)
        elif (m := _POD_CGROUPFS.match(part)) and i and parts[0] == "kubepods":
            qos = parts[1] if parts[1] in ("besteffort", "burstable") else "guaranteed"
            pod_uid = m.group(1)
            found = Container("kubernetes", "", pod_uid, qos)
        elif m := _MONITORS.match(part):
            runtime = "podman" if part.startswith("libpod") else "cri-o"
            found = Container(runtime, m.group(1), pod_uid, qos, monitor=True)
        elif (scope := next(((m, rt) for rx, rt in _SCOPES if (m := rx.match(part))), None)) is not None:
            found = Container(scope[1], scope[0].group(1), pod_uid, qos)
        elif _ID.match(part) and i:
            parent = parts[i - 1]
            if parent == "docker":
                found = Container("docker", part, pod_uid, qos)
            elif pod_uid:  # cgroupfs: the container's id right under its pod
                found = Container("cri", part, pod_uid, qos)
    return found


def unit_of(path: str) -> str:
    """The innermost systemd unit of a cgroup path (a .service or .scope), else the path: how a
    process in no container is named."""
    for part in reversed([p for p in path.split("/") if p]):
        if part.endswith((".service", ".scope")):
            return part
    return path or "/"


CONTAINERS_MAX = 20  # containers with series of their own in the export at a time
CONTAINER_GONE_S = 600.0  # where no source tells a cgroup's end: unseen this long is gone
OTHER = "other"  # the series of the containers that never had one of their own


@dataclass
class ContainerSeries:
    """Bounded labels for per-container counters: the first CONTAINERS_MAX containers seen get a
    series each, kept until the container is gone (`end`: its cgroup v2 directory removed, as the
    live source tells); a slot freed goes to the next container seen. Containers that never had a
    series count under OTHER: so every series, OTHER included, only ever increases (a container's
    counts before it got a series stay in OTHER). Where nothing tells a container's end (a
    recording made before netscope watched cgroups), one unseen for CONTAINER_GONE_S is gone."""

    max_series: int = CONTAINERS_MAX
    gone_s: float = CONTAINER_GONE_S
    # label -> when one of its processes was last seen
    _last_seen: dict[str, float] = field(default_factory=dict)
    _ends_told: bool = False  # a source tells each container's end: no time limit

    def end(self, container: str) -> None:
        """`container` is gone (its cgroup removed): its series ends, its slot is free."""
        self._ends_told = True
        self._last_seen.pop(container, None)

    def ends_told(self) -> None:
        """From now on, each container's end is told (`end`): an idle container keeps its series."""
        self._ends_told = True

    def label(self, container: str, now: float) -> str:
        """The series `container`'s counts of this moment go to."""
        seen = self._last_seen
        if not self._ends_told:
            for name in [n for n, t in seen.items() if now - t >= self.gone_s]:
                del seen[name]  # gone: its series ends, its slot is free
        if container in seen or len(seen) < self.max_series:
            seen[container] = now
            return container
        return OTHER

    def labels(self) -> frozenset[str]:
        """The containers with a series of their own now."""
        return frozenset(self._last_seen)
