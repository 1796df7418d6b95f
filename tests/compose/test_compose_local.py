"""What can be proven about docker compose without a Docker engine.

Every service of docker-compose.yml runs here as a local process: the same entry
point (the image's CMD or compose's command), the same variables (image ENV, then
compose's environment), with the compose network mapped onto loopback
(tests/compose/localize.py). The gateway is real Envoy on compose/envoy.yaml with
its addresses mapped the same way. Then the README's curl lines go through it.

Not proven here: that the images build, that Docker's DNS and aliases resolve as
declared, the read-only root file system and the named volume's ownership.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from mesh.envoy import envoy_binary
from tests.compose.localize import (
    LOOPBACK,
    Network,
    local_argv,
    local_env,
    local_envoy_config,
    plan_network,
)
from tests.compose.project import Project, Service, load_envoy_config, load_project
from tests.support.procs import Proc, running, start, wait_http_ok

GATEWAY = "gateway"
GATEWAY_PORT = 8080  # the README's localhost:8080
MAX_REQUESTS = 60  # bound on the request loops that wait for no event in Envoy
# Waiting on Envoy: seconds on a quiet machine, the rest is room for a loaded one.
EJECT_DEADLINE_S = 60.0
SETTLE_DEADLINE_S = 120.0
SETTLED_STREAK = 30  # by chance alone (a 50/50 pick per request): 2**-30


@dataclass
class Stack:
    project: Project
    net: Network
    procs: dict[str, Proc]
    envs: dict[str, dict[str, str]]

    @property
    def gateway_url(self) -> str:
        """What the README calls localhost:8080 (published 127.0.0.1:8080 -> gateway:8080)."""
        target = int(self.project.services[GATEWAY].published(GATEWAY_PORT)["target"])
        return f"http://{LOOPBACK}:{self.net.local(GATEWAY, target)}"

    def published_url(self, service: str, target: int) -> str:
        """The host port compose publishes for SERVICE's container port TARGET, mapped."""
        self.project.services[service].published(target)
        return f"http://{LOOPBACK}:{self.net.local(service, target)}"

    @property
    def admin_url(self) -> str:
        return self.procs[GATEWAY].url


def start_app(service: Service, net: Network, log_dir: Path) -> tuple[Proc, dict[str, str]]:
    env = local_env(service, net)
    proc = start(service.name, local_argv(service.argv), log_dir, env=env, port=int(env["PORT"]))
    return proc, env


def start_gateway(project: Project, net: Network, tmp_path: Path) -> Proc:
    gateway = project.services[GATEWAY]
    local = local_envoy_config(load_envoy_config(), gateway, net)
    config = tmp_path / "envoy.local.yaml"
    config.write_text(yaml.safe_dump(local, sort_keys=False))
    argv = list(gateway.argv)
    assert argv[0] == "envoy", f"gateway command must start with envoy: {argv}"
    argv[0] = str(envoy_binary())
    argv[argv.index("-c") + 1] = str(config)
    argv += ["--disable-hot-restart"]  # other Envoys may run on this machine
    admin = int(local["admin"]["address"]["socket_address"]["port_value"])
    return start(GATEWAY, argv, tmp_path / "logs", port=admin)


@pytest.fixture(scope="module", name="stack")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every compose service as a local process, in depends_on order, ready."""
    tmp_path = tmp_path_factory.mktemp("compose")
    project = load_project()
    net = plan_network(project, GATEWAY, load_envoy_config(), tmp_path)
    procs: dict[str, Proc] = {}
    envs: dict[str, dict[str, str]] = {}
    apps = [s for s in project.services.values() if s.name != GATEWAY]
    with running([]) as started:
        for service in apps:
            procs[service.name], envs[service.name] = start_app(service, net, tmp_path / "logs")
            started.append(procs[service.name])
        for service in apps:
            wait_http_ok(procs[service.name], "/readyz")
        procs[GATEWAY] = start_gateway(project, net, tmp_path)
        started.append(procs[GATEWAY])
        wait_http_ok(procs[GATEWAY], "/ready")
        yield Stack(project=project, net=net, procs=procs, envs=envs)


def run_healthcheck(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.integration
def test_compose_and_image_health_checks_pass_against_the_running_services(stack: Stack) -> None:
    for name, env in stack.envs.items():
        service = stack.project.services[name]
        checks = [service.healthcheck]
        if service.dockerfile and service.dockerfile.final.healthcheck:
            checks.append(service.dockerfile.final.healthcheck)
        for check in checks:
            assert check, name
            result = run_healthcheck(local_argv(check), env)
            assert result.returncode == 0, f"{name}: {check}\n{result.stderr[-2000:]}"


@pytest.mark.integration
def test_gateway_health_check_asks_envoy_admin(stack: Stack) -> None:
    check = stack.project.services[GATEWAY].healthcheck
    assert check and check[0] == "bash"
    container_admin = int(load_envoy_config()["admin"]["address"]["socket_address"]["port_value"])
    script = check[-1].replace(
        f"/{LOOPBACK}/{container_admin}", f"/{LOOPBACK}/{stack.procs[GATEWAY].port}"
    )
    assert script != check[-1], "the gateway health check must target the admin port"
    result = run_healthcheck([*check[:-1], script], env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    broken = script.replace("/ready", "/no-such-admin-page")
    assert run_healthcheck([*check[:-1], broken], env={"PATH": "/usr/bin:/bin"}).returncode != 0


def backend_of(response: httpx.Response) -> dict:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    return response.json()["backend"]


@pytest.mark.integration
def test_curl_api_tasks_answers_from_both_v1_replicas(stack: Stack) -> None:
    """`curl localhost:8080/api/tasks`: v1, spread over backend-v1-0 and backend-v1-1."""
    seen: set[str] = set()
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        for _ in range(MAX_REQUESTS):
            backend = backend_of(client.get("/api/tasks"))
            assert backend["version"] == "v1"
            seen.add(backend["instance"])
            if len(seen) == 2:
                break
    assert seen == {"backend-v1-0", "backend-v1-1"}


@pytest.mark.integration
def test_curl_with_x_canary_answers_from_v2(stack: Stack) -> None:
    """`curl -H 'x-canary: true' localhost:8080/api/tasks`: always the v2 replica."""
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        answers = [
            backend_of(client.get("/api/tasks", headers={"x-canary": "true"})) for _ in range(5)
        ]
        other = backend_of(client.get("/api/tasks", headers={"x-canary": "True"}))
    assert {(b["version"], b["instance"]) for b in answers} == {("v2", "backend-v2-0")}
    assert other["version"] == "v1", "the match is exact: only the value `true` selects v2"


@pytest.mark.integration
def test_frontends_backend_url_goes_through_envoys_canary_routing(stack: Stack) -> None:
    """What the frontend calls (BACKEND_URL=http://backend-service:5000) is Envoy's routing."""
    backend_url = stack.envs["frontend"]["BACKEND_URL"]
    with httpx.Client(base_url=backend_url, timeout=10) as client:
        canary = client.get("/api/tasks", headers={"x-canary": "true"})
        stable = client.get("/api/tasks")
    assert canary.status_code == stable.status_code == 200
    assert canary.json()["version"] == canary.headers["x-backend-version"] == "v2"
    assert stable.json()["version"] == "v1"
    assert stable.headers["x-envoy-upstream-service-time"], "answered through Envoy"


@pytest.mark.integration
def test_admin_is_not_routed_from_the_edge(stack: Stack) -> None:
    response = httpx.get(f"{stack.gateway_url}/admin/fault", timeout=10)
    assert response.status_code == 404


def v1_host(stack: Stack, instance: str) -> dict:
    """Envoy's view of INSTANCE in the v1 subset cluster (admin /clusters?format=json)."""
    clusters = httpx.get(f"{stack.admin_url}/clusters?format=json", timeout=10).json()
    for cluster in clusters["cluster_statuses"]:
        if "|v1|" in cluster["name"]:
            for host in cluster.get("host_statuses", []):
                if host.get("hostname") == instance:
                    return host
    raise AssertionError(f"{instance} is not a host of the v1 subset cluster")


def until(check: Callable[[], bool], deadline_s: float, what: str) -> None:
    """Call CHECK (which sends a request, so each call moves things on) until it is true."""
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {deadline_s:.0f} s"


def ejected(stack: Stack, instance: str) -> bool:
    return bool(v1_host(stack, instance)["health_status"].get("failed_outlier_check"))


@pytest.mark.integration
def test_fault_on_one_published_backend_port_ejects_that_replica(stack: Stack) -> None:
    """`curl -X PUT localhost:5101/admin/fault -d '{...}'`, then traffic: Envoy ejects it.

    Waits on Envoy's state with generous deadlines, never on a number of requests or
    on time: how many requests it takes to eject depends on which host least-request
    picks; with STRICT_DNS clusters (compose's) the workers stop picking an ejected
    host only once the host-set update reaches them (outlier-detection interval and
    update merge window, 1 s each); and the ejection ends after baseEjectionTime
    (15 s), which a loaded machine can reach mid-check. So a request counts as
    evidence only while Envoy reports the host ejected both before and after it; the
    fault stays on, so a host that came back is soon ejected again (for longer).
    """
    faulty, healthy = "backend-v1-0", "backend-v1-1"
    port = stack.project.services[faulty].container_port or 0
    toggle = f"{stack.published_url(faulty, port)}/admin/fault"
    put = httpx.put(toggle, json={"status": 503, "error_rate": 1.0}, timeout=10)
    assert put.status_code == 200 and put.json()["active"] is True, put.text
    try:
        with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:

            def request_then_ejected() -> bool:
                client.get("/api/tasks")
                return ejected(stack, faulty)

            until(request_then_ejected, EJECT_DEADLINE_S, f"ejection of {faulty}")

            streak = 0

            def healthy_only_while_ejected() -> bool:
                nonlocal streak
                before = ejected(stack, faulty)
                response = client.get("/api/tasks")
                if not (before and ejected(stack, faulty)):
                    streak = 0  # not evidence: the host was not ejected all along
                elif response.status_code == 200 and backend_of(response)["instance"] == healthy:
                    streak += 1
                else:
                    streak = 0  # the workers still pick the ejected host: not settled yet
                return streak == SETTLED_STREAK

            until(
                healthy_only_while_ejected,
                SETTLE_DEADLINE_S,
                f"{SETTLED_STREAK} answers in a row from {healthy} alone while {faulty} is ejected",
            )
        assert httpx.get(toggle, timeout=10).json()["injected"]["errors"] >= 1
        stats = httpx.get(
            f"{stack.admin_url}/stats",
            params={"filter": "outlier_detection.ejections_enforced_total"},
            timeout=10,
        ).text
        enforced = [line for line in stats.splitlines() if "|v1|" in line]
        assert enforced and int(enforced[0].rsplit(":", 1)[1]) >= 1, stats
    finally:
        cleared = httpx.delete(toggle, timeout=10)
    assert cleared.status_code == 200 and cleared.json()["active"] is False
