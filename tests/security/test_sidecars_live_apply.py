"""`mesh up --sidecars` follows a changed policy or route live, as istiod pushes to every
proxy, a new Service port included (mesh/loop/sidecars.py).

One mesh of a copy of k8s/ with a sidecar per instance, on real Envoy; each test edits
the copy, applies it (`LocalMesh.apply`, what a save or `mesh apply` does) and puts the
file back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.runner import LocalMesh
from mesh.sidecars import GATEWAY_IDENTITY, Sidecar
from tests.loop.support import copy_k8s, edit_yaml
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


def _steady(mesh: LocalMesh, status: int, what: str) -> None:
    """Until 5 calls in a row answer STATUS. A pooled connection to a sidecar whose
    listener changed carries one last answer of the old filter chain (Envoy closes it
    with that answer, as Istio's proxies drain), so the first calls may still differ."""
    streak = 0

    def next_is_status() -> bool:
        nonlocal streak
        streak = streak + 1 if _as_gateway(mesh).status_code == status else 0
        return streak >= 5

    poll(next_is_status, DEADLINE_S, what)


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
        _steady(mesh, 200, "the gateway let in")
    finally:
        policy.write_text(original)
    _applied(mesh)
    _steady(mesh, 403, "the gateway refused again")
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


def _pods(mesh: LocalMesh) -> list[str]:
    return sorted(p.name for p in mesh.kubelet.pods)


def _answers(port: int) -> bool:
    """Whether something accepts a connection on loopback PORT."""
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5.0)
    except httpx.TransportError:
        return False
    return True


ALT = """---
apiVersion: v1
kind: Service
metadata:
  name: backend-alt
spec:
  selector:
    app: backend
    version: v1
  ports:
    - name: http
      appProtocol: http
      port: 5001
      targetPort: http
"""


def test_a_service_change_is_followed_and_a_new_port_gets_a_listener_in_every_sidecar(
    mesh: LocalMesh, tree: Path
) -> None:
    """A label of a Service moves only clusters and endpoints; a new Service port (here a
    new Service's) gets an outbound listener in every running sidecar, as istiod adds it
    to every proxy (no replica restarts: none of their env names it), and goes again with
    the port. (A second port on backend-service would be refused by `mesh check`: its
    VirtualService names no port, IST0112.)"""
    service = tree / "services" / "backend-service.yaml"
    original = service.read_text()
    pods = _pods(mesh)
    assert mesh.sidecar_setup is not None
    sidecars = mesh.sidecar_setup.sidecars
    try:
        edit_yaml(service, lambda doc: doc["metadata"].setdefault("labels", {}).update(tier="x"))
        assert _applied(mesh)["changes"] == ["Service/backend-service changed"]
        assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
        service.write_text(service.read_text() + ALT)
        assert _applied(mesh)["changes"] == ["Service/backend-alt added"]
        assert all(("backend-alt", 5001) in s.outbound for s in sidecars), sidecars
        frontend = next(s for s in sidecars if s.deployment.name == "frontend")
        port = frontend.outbound_port("backend-alt", 5001)
        # the frontend's own sidecar calls it with the frontend's identity: allowed, mTLS
        assert versions(f"http://127.0.0.1:{port}/api/tasks", 5) == {"v1": 5}
        assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
        assert _pods(mesh) == pods
    finally:
        service.write_text(original)
    _applied(mesh)  # the file as it was: the port's listeners go
    assert not any(("backend-alt", 5001) in s.outbound for s in sidecars)
    poll(lambda: not _answers(port), DEADLINE_S, "the removed port's listener to close")
    assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
    assert _pods(mesh) == pods


def test_a_kind_no_sidecar_reads_is_applied_and_restarts_nothing(
    mesh: LocalMesh, tree: Path
) -> None:
    """A PersistentVolumeClaim (one SQLite file locally) changes no sidecar: applied, as
    without sidecars (it was refused: only a list of kinds was followed live)."""
    claim = tree / "storage" / "tasks-pvc.yaml"
    original = claim.read_text()
    pods = _pods(mesh)
    try:
        edit_yaml(claim, lambda doc: doc["metadata"].setdefault("labels", {}).update(tier="x"))
        outcome = _applied(mesh)
    finally:
        claim.write_text(original)
    assert outcome["changes"] == ["PersistentVolumeClaim/tasks-store changed"], outcome
    assert _pods(mesh) == pods
    assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
    _applied(mesh)


def _plain(sidecar: Sidecar) -> int | None:
    """Status of a plain-text GET to SIDECAR's inbound port (None: no HTTP answer)."""
    try:
        url = f"http://127.0.0.1:{sidecar.inbound_port}/api/tasks"
        return httpx.get(url, timeout=5.0).status_code
    except httpx.TransportError:
        return None


def test_a_peer_authentication_change_moves_every_sidecar_live(mesh: LocalMesh, tree: Path) -> None:
    """Istio's mTLS migration, backwards and forwards: STRICT refuses plain text at the
    handshake; PERMISSIVE takes it, and the backend's RBAC then denies a caller with no
    identity; the frontend's calls pass throughout."""
    assert mesh.sidecar_setup is not None
    backend = next(s for s in mesh.sidecar_setup.sidecars if s.instance == "backend-v1-0")
    assert _plain(backend) is None
    policy = tree / "istio" / "peerauthentication.yaml"
    original = policy.read_text()
    try:
        edit_yaml(policy, lambda doc: doc["spec"]["mtls"].update(mode="PERMISSIVE"))
        assert "PeerAuthentication/default changed" in _applied(mesh)["changes"]
        assert {s.mode for s in mesh.sidecar_setup.sidecars} == {"PERMISSIVE"}
        poll(lambda: _plain(backend) == 403, DEADLINE_S, "plain text let in, then denied")
        assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
    finally:
        policy.write_text(original)
    _applied(mesh)
    assert {s.mode for s in mesh.sidecar_setup.sidecars} == {"STRICT"}
    poll(lambda: _plain(backend) is None, DEADLINE_S, "plain text refused again")
    assert versions(mesh.gateway_url + "/api/tasks", 5) == {"v1": 5}
