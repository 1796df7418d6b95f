"""docker-compose.yml + compose/postgres.yml without a Docker engine, as
test_compose_local.py runs the plain file: every service a local process with its
compose environment on loopback, the `postgres` service as a real PostgreSQL server
(Debian's, mesh/pgserver.py) with the image's POSTGRES_* settings and its health
check, then the README's curl lines through the gateway's real Envoy."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from mesh import pgserver
from tests.compose.localize import plan_network
from tests.compose.project import COMPOSE_FILE, load_envoy_config, load_project
from tests.compose.test_compose_local import GATEWAY, Stack, start_app, start_gateway
from tests.docker.tools import ROOT
from tests.support.postgres import scratch_dir
from tests.support.procs import running, wait_http_ok

pytestmark = pytest.mark.integration

OVERRIDE = ROOT / "compose" / "postgres.yml"
ENV_FILE = ROOT / "k8s" / "variants" / "postgres" / "postgres.env"
PG_PORT = 5432  # the image's


@pytest.fixture(scope="module", name="stack")
def _stack() -> Iterator[Stack]:
    root = scratch_dir("compose-pg-")  # the server may run as nobody: a reachable dir
    project = load_project(COMPOSE_FILE, OVERRIDE, env_file=ENV_FILE)
    net = plan_network(project, GATEWAY, load_envoy_config(), root)
    db = project.services["postgres"]
    port = net.add(db, PG_PORT)
    env = db.env
    server = pgserver.LocalServer(
        pgserver.start(
            root / "postgres-data", port, user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"], database=env["POSTGRES_DB"],
            log_path=root / "postgres.log",
        ),
        port, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"],
    )  # fmt: skip
    try:
        pgserver.wait_accepting(port, server.popen)
        apps = [s for s in project.services.values() if s.name not in (GATEWAY, "postgres")]
        procs, envs = {}, {}
        with running([]) as started:
            for service in apps:
                procs[service.name], envs[service.name] = start_app(service, net, root / "logs")
                started.append(procs[service.name])
            for service in apps:
                wait_http_ok(procs[service.name], "/readyz", timeout=60)
            procs[GATEWAY] = start_gateway(project, net, root)
            started.append(procs[GATEWAY])
            wait_http_ok(procs[GATEWAY], "/ready")
            yield Stack(project=project, net=net, procs=procs, envs=envs)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_postgres_health_check_passes(stack: Stack) -> None:
    check = stack.project.services["postgres"].healthcheck
    assert check and check[0] == "pg_isready"
    port = stack.net.local("postgres", PG_PORT)
    argv = [str(pgserver.bin_dir() / "pg_isready"), *check[1:], "-p", str(port)]
    assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    stopped = [*argv[:-1], str(port + 1 if port < 65535 else port - 1)]
    assert subprocess.run(stopped, capture_output=True, timeout=30).returncode != 0


def test_the_curl_lines_work_and_v1_and_v2_share_postgres(stack: Stack) -> None:
    assert all(env["TASKS_DB"].startswith("postgresql://") for n, env in stack.envs.items()
               if n.startswith("backend"))  # fmt: skip
    title = f"compose on postgres {uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        created = client.post("/api/tasks", json={"title": title})
        assert created.status_code == 201, created.text
        stable = client.get("/api/tasks").json()
        canary = client.get("/api/tasks", headers={"x-canary": "true"}).json()
    assert stable["backend"]["version"] == "v1" and canary["backend"]["version"] == "v2"
    for listing in (stable, canary):
        assert [t["title"] for t in listing["tasks"]].count(title) == 1
