"""`mesh up --sidecars` follows a changed policy or route live, as istiod pushes to every
proxy; a change to a workload is refused and the mesh keeps serving (mesh/loop/sidecars.py).

One mesh of a copy of k8s/ with a sidecar per instance, on real Envoy; each test edits
the copy, applies it (`LocalMesh.apply`, what a save or `mesh apply` does) and puts the
file back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.errors import RunnerError
from mesh.runner import LocalMesh
from mesh.sidecars import GATEWAY_IDENTITY
from tests.loop.support import copy_k8s, edit_yaml, set_replicas
from tests.mesh.traffic import poll, versions
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

DENIED = "RBAC: access denied"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_k8s(tmp_path_factory.mktemp("sidecars-live"))


@pytest.fixture(scope="module", name="mesh")
def _mesh(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with new_mesh(tree, tmp_path_factory.mktemp("state"), sidecars=True) as mesh:
        yield mesh


def _as_gateway(mesh: LocalMesh) -> httpx.Response:
    """GET the backend's tasks from the host through the shared Envoy: the call reaches
    the backend's sidecars with the ingress gateway's identity."""
    return httpx.get(mesh.service_url("backend-service") + "/api/tasks", timeout=10.0)


def _applied(mesh: LocalMesh) -> dict[str, Any]:
    outcome = mesh.apply()
    assert outcome["result"] == "applied", outcome
    return outcome


def _allow_gateway(doc: dict[str, Any]) -> None:
    doc["spec"]["rules"][0]["from"][0]["source"]["principals"].append(GATEWAY_IDENTITY)


def _stable_to(subset: str):  # type: ignore[no-untyped-def]
    def change(doc: dict[str, Any]) -> None:
        stable = next(r for r in doc["spec"]["http"] if r["name"] == "stable")
        stable["route"][0]["destination"]["subset"] = subset

    return change


def test_an_authorization_policy_change_reaches_the_backends_sidecars(
    mesh: LocalMesh, tree: Path
) -> None:
    refused = _as_gateway(mesh)
    assert refused.status_code == 403 and DENIED in refused.text
    policy = tree / "istio" / "authorizationpolicy-backend.yaml"
    original = policy.read_text()
    try:
        edit_yaml(policy, _allow_gateway)
        outcome = _applied(mesh)
        assert "AuthorizationPolicy/backend-allow-frontend changed" in outcome["changes"]
        # a pooled connection may carry one last answer of the old filter chain (Envoy
        # closes it with that answer, as Istio's proxies drain), then the new one serves
        poll(lambda: _as_gateway(mesh).status_code == 200, DEADLINE_S, "the gateway let in")
        assert all(_as_gateway(mesh).status_code == 200 for _ in range(5))
    finally:
        policy.write_text(original)
    _applied(mesh)
    poll(lambda: _as_gateway(mesh).status_code == 403, DEADLINE_S, "the gateway refused again")
    # the frontend's identity was allowed throughout
    assert httpx.get(mesh.gateway_url + "/api/tasks", timeout=10.0).status_code == 200


def test_a_route_change_reaches_the_frontends_own_sidecar(mesh: LocalMesh, tree: Path) -> None:
    url = mesh.gateway_url + "/api/tasks"
    assert versions(url, 10) == {"v1": 10}
    route = tree / "istio" / "virtualservice-backend.yaml"
    original = route.read_text()
    try:
        edit_yaml(route, _stable_to("v2"))
        _applied(mesh)
        # the frontend calls backend-service through its own sidecar: v2 only if the
        # sidecar got the new route
        assert versions(url, 20) == {"v2": 20}
    finally:
        route.write_text(original)
    _applied(mesh)
    assert versions(url, 20) == {"v1": 20}


def test_a_workload_change_is_refused_and_the_mesh_keeps_serving(
    mesh: LocalMesh, tree: Path
) -> None:
    deployment = tree / "deployments" / "backend-v1.yaml"
    original = deployment.read_text()
    in_force = mesh.generation
    assert in_force is not None
    try:
        set_replicas(tree, "backend-v1", 3)
        outcome = mesh.apply()
    finally:
        deployment.write_text(original)
    assert outcome["result"] == "refused", outcome
    message = outcome["findings"][0]["message"]
    assert message.startswith("Deployment/backend-v1 changed: a mesh started with --sidecars")
    assert "restart `mesh up --sidecars`" in message
    assert mesh.generation is in_force
    assert len(mesh.kubelet.pods_of("backend-v1")) == 2
    assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}


def test_a_rollout_is_refused_with_sidecars(mesh: LocalMesh) -> None:
    with pytest.raises(RunnerError, match="run the rollout on a mesh started without"):
        mesh.route_weights("backend-service")
    with pytest.raises(RunnerError, match="--sidecars"):
        mesh.set_route_weights("backend-service", {"v1": 50, "v2": 50})
