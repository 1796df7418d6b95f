"""The compose-to-loopback mapping the integration test relies on (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compose.localize import (
    LOOPBACK,
    local_argv,
    local_env,
    local_envoy_config,
    plan_network,
)
from tests.compose.project import Project, load_envoy_config, load_project, socket_addresses

GATEWAY = "gateway"


@pytest.fixture(scope="module", name="project")
def _project() -> Project:
    return load_project()


def test_every_envoy_address_lands_on_a_distinct_loopback_port(
    project: Project, tmp_path: Path
) -> None:
    envoy = load_envoy_config()
    net = plan_network(project, GATEWAY, envoy, tmp_path)
    local = local_envoy_config(envoy, project.services[GATEWAY], net)
    addresses = [a for _, a in socket_addresses(local)]
    assert addresses and all(a["address"] == LOOPBACK for a in addresses)
    listening = [a["port_value"] for p, a in socket_addresses(local) if "clusters" not in p]
    assert len(set(listening)) == len(listening)
    endpoint_ports = {a["port_value"] for p, a in socket_addresses(local) if "clusters" in p}
    assert not endpoint_ports & set(listening), "an endpoint would loop back into Envoy"
    assert load_envoy_config() == envoy, "the saved config must not be modified"


def test_an_unknown_host_in_the_envoy_config_is_an_error(project: Project, tmp_path: Path) -> None:
    envoy = load_envoy_config()
    net = plan_network(project, GATEWAY, envoy, tmp_path)
    cluster = envoy["static_resources"]["clusters"][0]
    _, addr = socket_addresses(cluster)[0]
    addr["address"] = "no-such-service"
    with pytest.raises(KeyError, match="no-such-service"):
        local_envoy_config(envoy, project.services[GATEWAY], net)


def test_env_maps_urls_ports_and_volumes(project: Project, tmp_path: Path) -> None:
    envoy = load_envoy_config()
    net = plan_network(project, GATEWAY, envoy, tmp_path)
    frontend = next(s for s in project.services.values() if s.argv == ["frontend"])
    env = local_env(frontend, net)
    assert env["BACKEND_URL"] == f"http://{LOOPBACK}:{net.local(GATEWAY, 5000)}"
    assert env["PORT"] == str(net.local(frontend.name, frontend.container_port or 0))
    assert env["HOST"] == LOOPBACK
    backend = next(s for s in project.services.values() if s.argv == ["backend"])
    store = Path(local_env(backend, net)["TASKS_DB"])
    assert store.parent in net.volumes.values() and store.parent.is_relative_to(tmp_path)


def test_commands_resolve_to_this_venv() -> None:
    argv = local_argv(["backend"])
    assert Path(argv[0]).name == "backend" and Path(argv[0]).exists()
    with pytest.raises(FileNotFoundError, match="no-such-entry-point"):
        local_argv(["no-such-entry-point"])
