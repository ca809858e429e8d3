"""The names containers and pods have, read from the runtimes' own state files where they are
readable (no runtime API, no socket): a container id or pod uid (as its cgroup path names it,
model/containers.py) to the name `docker ps` or `kubectl get pods` shows.

- docker (moby): each container's `config.v2.json` in `<data-root>/containers/<id>/` (data-root
  /var/lib/docker by default), whose `Name` is the name with a leading `/`.
- kubelet: `/var/log/pods/<namespace>_<pod name>_<pod uid>/` per pod (BuildPodLogsDirectory) and
  `/var/log/containers/<pod name>_<namespace>_<container name>-<container id>.log` per container
  (logSymlink), whatever the runtime (containerd, CRI-O). Names and namespaces are DNS labels:
  no `_` in them.
Podman keeps its names in its own database (bolt or sqlite), not read here: a podman container is
named by its id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

DOCKER_ROOT = Path("/var/lib/docker")
KUBELET_PODS = Path("/var/log/pods")
KUBELET_CONTAINERS = Path("/var/log/containers")
HEX64 = 64


def container_names(
    keys: Collection[str],
    docker_root: Path = DOCKER_ROOT,
    pods: Path = KUBELET_PODS,
    containers: Path = KUBELET_CONTAINERS,
) -> dict[str, str]:
    """The names of those of `keys` (container ids, pod uids) the state files name: a docker
    container its name, a container in a pod `namespace/pod/container`, a pod `namespace/pod`.
    What cannot be read is left out."""
    wanted = set(keys)
    names: dict[str, str] = {}
    for key in wanted:
        if len(key) == HEX64:
            try:
                config = json.loads((docker_root / "containers" / key / "config.v2.json").read_bytes())
            except (OSError, ValueError):
                continue
            name = config.get("Name") if isinstance(config, dict) else None
            if isinstance(name, str) and name.strip("/"):
                names[key] = name.strip("/")
    for entry in _listing(containers):
        stem, _, container_id = entry.removesuffix(".log").rpartition("-")
        parts = stem.split("_")
        if container_id in wanted and entry.endswith(".log") and len(parts) == 3:
            pod, namespace, container = parts
            names[container_id] = f"{namespace}/{pod}/{container}"
    for entry in _listing(pods):
        parts = entry.split("_")
        if len(parts) == 3 and parts[2] in wanted:
            namespace, pod, uid = parts
            names[uid] = f"{namespace}/{pod}"
    return names


def _listing(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []
