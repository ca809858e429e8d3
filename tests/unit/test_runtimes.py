"""Container and pod names from the runtimes' own state files, laid out as moby and the kubelet
write them: docker's config.v2.json, the kubelet's pod log directories and container log links."""

from __future__ import annotations

import json
from pathlib import Path

from netscope.model.containers import Container
from netscope.model.filter import Scope
from netscope.sources.runtimes import container_names

WEB = "ab" * 32
APP = "cd" * 32
POD = "0d3a1c6e-8e3b-4a7c-9f2e-1b2c3d4e5f60"


def state(root: Path) -> tuple[Path, Path, Path]:
    docker, pods, containers = root / "docker", root / "pods", root / "containers"
    (docker / "containers" / WEB).mkdir(parents=True)
    (docker / "containers" / WEB / "config.v2.json").write_text(json.dumps({"ID": WEB, "Name": "/web"}))
    (docker / "containers" / ("ef" * 32)).mkdir(parents=True)  # a container without its config
    (pods / f"shop_api-7d9f_{POD}").mkdir(parents=True)
    containers.mkdir()
    (containers / f"api-7d9f_shop_app-{APP}.log").symlink_to(pods / f"shop_api-7d9f_{POD}")
    (containers / "not-a-log-link").write_text("")
    return docker, pods, containers


def test_docker_names_its_containers_and_the_kubelet_its_pods_and_their_containers(tmp_path: Path) -> None:
    docker, pods, containers = state(tmp_path)
    keys = {WEB, APP, POD, "ef" * 32, "99" * 32}
    assert container_names(keys, docker, pods, containers) == {
        WEB: "web",
        APP: "shop/api-7d9f/app",
        POD: "shop/api-7d9f",
    }
    assert container_names(keys, tmp_path / "none", tmp_path / "none", tmp_path / "none") == {}


def test_a_container_is_called_by_its_id_a_prefix_runtime_id_its_pod_or_its_name() -> None:
    web = Container("docker", WEB)
    app = Container("containerd", APP, pod_uid=POD, qos="burstable")
    names = {WEB: "web", APP: "shop/api-7d9f/app", POD: "shop/api-7d9f"}
    for want in ("abab", f"docker:{WEB}", "web", "WEB"):
        assert web.called(want, names), want
    for want in ("podman:abab", "we", "cdcd", ""):
        assert not web.called(want, names), want
    for want in ("cdcd", "0d3a1c6e", "shop/api-7d9f", "api-7d9f", "app", "shop/api-7d9f/app"):
        assert app.called(want, names), want
    assert not app.called("shop", names) and not app.called("abab", names)
    assert Scope(containers=("web",)).holds_container(web, names)
    assert not Scope(containers=("web",)).holds_container(web, {}) and not Scope(
        containers=("web",)
    ).holds_container(None, names)
    assert web.name_in(names) == "web" and Container("docker", "99" * 32).name_in(names) == ""
