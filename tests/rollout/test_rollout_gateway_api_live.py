"""`mesh rollout` on k8s/variants/gateway-api against a real `mesh up` and its Envoy: the
route is an HTTPRoute bound to backend-service (GAMMA) whose default rule sends to the
Service backend-v1, so the rollout moves the weights of its backendRefs between the
Services backend-v1 and backend-v2 (Flagger's gatewayapi router). The test reads the
weights from Envoy's config dump by full cluster name, and the answers' versions."""

from __future__ import annotations

import collections
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mesh.state import read_state
from tests.loop.support import served_routes
from tests.rollout.support import (
    SERVICE,
    Mesh,
    events,
    outcome_json,
    reset,
    wait_served,
)
from tests.support.mesh_up import mesh_up
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
V1 = "outbound|5000||backend-v1.default.svc.cluster.local"
V2 = "outbound|5000||backend-v2.default.svc.cluster.local"
FAST = ("--interval", "2s", "--load", "40", "--min-requests", "5")


class GatewayMesh(Mesh):
    def served(self) -> dict[str, int]:
        """{cluster: weight} of the backend's default route as Envoy serves it."""
        route = served_routes(self.admin_url)[-1]["route"]
        if "cluster" in route:
            return {route["cluster"]: 100}
        return {c["name"]: int(c["weight"]) for c in route["weighted_clusters"]["clusters"]}


@pytest.fixture(name="gw_up", scope="module")
def _gw_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayMesh]:
    work = tmp_path_factory.mktemp("rollout-gateway-api")
    shutil.copytree(REPO / "k8s", work / "k8s", ignore=shutil.ignore_patterns("jobs"))
    ports = [f"--service-port={name}={free_port()}" for name in ("backend-v1", "backend-v2")]
    with mesh_up(work / "k8s" / "variants" / "gateway-api", work, *ports) as running:
        yield GatewayMesh(running, files={V1: 100})


@pytest.fixture(name="gw")
def _gw(gw_up: GatewayMesh) -> GatewayMesh:
    reset(gw_up)
    return gw_up


def versions(mesh: Mesh, n: int) -> collections.Counter[str]:
    url = read_state(mesh.state_dir).gateway_urls[0] + "/api/tasks"
    with httpx.Client(timeout=10.0) as client:
        return collections.Counter(
            client.get(url).headers.get("x-backend-version", "none") for _ in range(n)
        )


def test_backend_v2_is_promoted_to_100_under_load_then_reset(gw: GatewayMesh) -> None:
    done, seen = gw.rollout_watched(
        SERVICE, "--to", "backend-v2", "--steps", "50,100", *FAST, "--json"
    )
    assert done.returncode == 0, done.stderr
    assert seen == [{V1: 100}, {V1: 50, V2: 50}, {V2: 100}]
    data = outcome_json(done)
    assert (data["result"], data["stable"], data["canary"]) == (
        "promoted",
        "backend-v1",
        "backend-v2",
    )
    half, full = data["steps"]
    # per-Service stats: both clusters had traffic at 50%, only backend-v2 at 100%
    assert half["canary"]["requests"] >= 5 and half["stable"]["requests"] >= 5
    assert full["stable"]["requests"] == 0 and full["canary"]["error_rate"] == 0.0
    assert [s["served"] for s in data["steps"]] == [
        {"backend-v1": 50, "backend-v2": 50},
        {"backend-v2": 100},
    ]
    assert versions(gw, 40) == {"v2": 40}  # the traffic itself
    reasons = [e["reason"] for e in events(gw) if e["object"] == f"rollout/{SERVICE}"]
    assert reasons[-4:] == ["RolloutStarted", "StepPassed", "StepPassed", "Promoted"]
    done = gw.rollout(SERVICE, "--reset")
    assert done.returncode == 0, done.stderr
    assert gw.served() == {V1: 100} and versions(gw, 20) == {"v1": 20}


def test_a_failing_backend_v2_is_rolled_back_to_backend_v1(gw: GatewayMesh) -> None:
    gw.fault("--status", "503", "--error-rate", "0.5")
    proc = gw.rollout(SERVICE, "--to", "backend-v2", "--steps", "50,100", *FAST)
    assert proc.returncode == 1, proc.stderr
    assert "rolled back: step 1 (50%): backend-v2 error rate" in proc.stdout
    assert gw.served() == {V1: 100}
    reasons = [e["reason"] for e in events(gw) if e["object"] == f"rollout/{SERVICE}"]
    assert reasons[-3:] == ["RolloutStarted", "StepFailed", "RolledBack"]


def test_write_puts_the_promotion_in_the_httproute_file(gw: GatewayMesh) -> None:
    path = gw.directory / "httproute-backend.yaml"
    original = path.read_text()
    try:
        proc = gw.rollout(SERVICE, "--to", "backend-v2", "--steps", "100", *FAST, "--write")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        text = path.read_text()
        assert text.startswith(original.split("apiVersion")[0])  # the comments kept
        rules = yaml.safe_load(text)["spec"]["rules"]
        assert rules[0]["backendRefs"] == [{"name": "backend-v2", "port": 5000}]
        assert rules[1] == yaml.safe_load(original)["spec"]["rules"][1]
        assert gw.served() == {V2: 100}
        path.write_text(original)  # the files decide again: no rollout holds the route
        wait_served(gw, {V1: 100})
    finally:
        path.write_text(original)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--to", "v2"), "no backendRef 'v2' (have: backend-v1, backend-v2)"),
        (("--to", "backend-v2", "--from", "frontend-service"), "no backendRef 'frontend-service'"),
    ],
)
def test_a_target_that_is_no_backendref_exits_2(
    gw: GatewayMesh, args: tuple[str, ...], message: str
) -> None:
    generation = gw.generation()
    proc = gw.rollout(SERVICE, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert gw.generation() == generation and gw.served() == {V1: 100}
