"""The local Deployment controller: scaling and rolling updates under load, no failure."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh
from tests.loop.support import extra_deployment, live_pods, set_env, set_replicas

pytestmark = pytest.mark.integration


def _no_failure(load: BackgroundLoad) -> None:
    result = load.result
    assert result is not None and result.total > 0
    assert set(result.status_counts) == {200} and not result.errors, (
        result.status_counts,
        result.errors,
    )


def test_scale_2_to_3_to_1_fails_no_request(mesh: LocalMesh, tree: Path) -> None:
    url = f"{mesh.gateway_url}/api/tasks"
    with BackgroundLoad(url, connections=4, qps=80) as load:
        set_replicas(tree, "backend-v1", 3)
        up = mesh.apply()
        assert up["result"] == "applied" and up["changes"] == ["Deployment/backend-v1 changed"]
        assert live_pods(mesh, "backend-v1") == ["backend-v1-0", "backend-v1-1", "backend-v1-2"]
        assert all(mesh.pod(n).ready for n in live_pods(mesh, "backend-v1"))
        survivor = mesh.pod("backend-v1-0").pid
        set_replicas(tree, "backend-v1", 1)
        down = mesh.apply()
        assert down["result"] == "applied" and not down["problems"]
    _no_failure(load)
    # the highest indexes left, and left the list once their processes were gone
    assert live_pods(mesh, "backend-v1") == ["backend-v1-0"]
    assert [p.name for p in mesh.workloads if p.deployment == "backend-v1"] == ["backend-v1-0"]
    assert mesh.pod("backend-v1-0").pid == survivor
    served = {
        httpx.get(f"{mesh.service_url('backend-service')}/api/tasks", timeout=10).json()["instance"]
        for _ in range(10)
    }
    assert served == {"backend-v1-0"}


def test_a_rolling_update_of_backend_and_frontend_fails_no_request(
    mesh: LocalMesh, tree: Path
) -> None:
    before = {p.name: (p.pid, p.port) for p in mesh.workloads}
    set_env(tree, "backend-v1", "LOG_LEVEL", "warning")
    set_env(tree, "frontend", "LOG_LEVEL", "warning")
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=4, qps=80) as load:
        outcome = mesh.apply()
    assert outcome["result"] == "applied" and not outcome["problems"], outcome
    _no_failure(load)
    after = {p.name: (p.pid, p.port) for p in mesh.workloads}
    assert set(after) == set(before)  # the same names, DEPLOYMENT-N
    for name in ("backend-v1-0", "backend-v1-1", "frontend-0"):
        assert after[name][0] != before[name][0], name  # a new process...
        assert after[name][1] != before[name][1], name  # ...that surged on a new port
        assert mesh.pod(name).env["LOG_LEVEL"] == "warning"
    assert after["backend-v2-0"] == before["backend-v2-0"]  # its template did not change
    reasons = [(e.reason, e.object) for e in mesh.events.recent()]
    assert ("RollingUpdate", "deployment/frontend") in reasons


def test_a_new_deployment_starts_and_a_removed_one_stops(mesh: LocalMesh, tree: Path) -> None:
    def one_replica(doc: dict) -> None:
        doc["spec"]["replicas"] = 1

    with extra_deployment(tree, "backend-v1-extra", one_replica):
        outcome = mesh.apply()
        assert outcome["result"] == "applied", outcome
        assert outcome["changes"] == ["Deployment/backend-v1-extra added"]
        assert live_pods(mesh, "backend-v1-extra") == ["backend-v1-extra-0"]
        url = f"{mesh.service_url('backend-service')}/api/tasks"
        seen = {httpx.get(url, timeout=10).json()["instance"] for _ in range(60)}
        assert "backend-v1-extra-0" in seen  # published into the v1 subset's endpoints
    outcome = mesh.apply()
    assert outcome["result"] == "applied"
    assert outcome["changes"] == ["Deployment/backend-v1-extra removed"]
    assert [p.name for p in mesh.workloads if p.deployment == "backend-v1-extra"] == []
