"""The repository's k8s/ running on real Envoy: canary routing, propagation, ejection."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from mesh import admin
from mesh.cli import main as mesh_main
from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.support import K8S, backend_cluster
from tests.mesh.traffic import clear_fault, ejected_then_returns, poll, versions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory) -> LocalMesh:
    """k8s/ on free ports, shared by the tests of this module."""
    return start_mesh(K8S)


def test_canary_header_picks_v2_and_everything_else_v1(mesh: LocalMesh) -> None:
    url = f"{mesh.gateway_url}/api/tasks"
    assert versions(url, 200) == {"v1": 200}
    assert versions(url, 200, {"x-canary": "true"}) == {"v2": 200}


@pytest.mark.parametrize("value", ["false", "TRUE", "True", "yes"])
def test_canary_match_is_exact(mesh: LocalMesh, value: str) -> None:
    assert versions(f"{mesh.gateway_url}/api/tasks", 20, {"x-canary": value}) == {"v1": 20}


def test_admin_is_not_routed_from_the_edge(mesh: LocalMesh) -> None:
    r = httpx.get(f"{mesh.gateway_url}/admin/fault")
    assert r.status_code == 404
    assert "x-backend-version" not in r.headers


def test_trace_headers_cross_two_envoy_hops_unchanged(mesh: LocalMesh) -> None:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sent = {
        "x-request-id": str(uuid.uuid4()),
        "traceparent": f"00-{trace_id}-{span_id}-01",
        "x-b3-traceid": trace_id,
        "x-b3-sampled": "1",
        "baggage": "tenant=demo",
        "x-canary": "true",
    }
    r = httpx.get(f"{mesh.gateway_url}/api/headers", headers=sent, timeout=10.0)
    assert r.status_code == 200, r.text
    body = r.json()
    got = body["backend"]["headers"]
    assert body["backend"]["version"] == "v2"  # x-canary reached the backend's sidecar
    for name in ("x-request-id", "x-b3-traceid", "x-canary", "baggage"):
        assert got.get(name) == sent[name], name
    assert re.fullmatch(rf"00-{trace_id}-[0-9a-f]{{16}}-0[01]", got["traceparent"])
    assert got.get("x-envoy-attempt-count") == "1"  # the mesh hop was really Envoy


def test_envoy_generates_one_request_id_for_both_hops(mesh: LocalMesh) -> None:
    body = httpx.get(f"{mesh.gateway_url}/api/headers", timeout=10.0).json()
    request_id = body["frontend"]["headers"].get("x-request-id")
    assert request_id
    assert body["backend"]["headers"].get("x-request-id") == request_id


def test_status_command_shows_workloads_and_clusters(
    mesh: LocalMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh_main(["status", "--state-dir", str(mesh.state_dir)]) == 0
    out = capsys.readouterr().out
    for w in mesh.workloads:
        assert re.search(rf"^{w.name}\s+{w.deployment}\s+{w.port}\s+\d+\s+ready\s+0\s", out, re.M)
    assert backend_cluster("v1") in out


def test_failing_replica_is_ejected_and_returns(
    mesh: LocalMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    url, v1 = mesh.service_url("backend-service"), backend_cluster("v1")
    ejected_then_returns(mesh, url, v1, "backend-v1-0")
    assert "backend-v1-0" in versions_by_instance(url, 100)
    assert "backend-v1-0: " in capsys.readouterr().out


def versions_by_instance(url: str, n: int) -> set[str]:
    with httpx.Client(timeout=10.0) as client:
        return {
            client.get(f"{url}/api/tasks").headers.get("x-backend-instance", "") for _ in range(n)
        }


def test_fault_command_rejects_unknown_workloads(mesh: LocalMesh) -> None:
    assert mesh_main(["fault", "nope-0", "--state-dir", str(mesh.state_dir)]) == 2
    clear_fault(mesh, "backend-v1-1")  # the toggle of a replica answers directly


def listed(mesh: LocalMesh, cluster_name: str) -> set[str]:
    """The instances Envoy's /clusters lists in CLUSTER_NAME."""
    return {h.hostname for c in admin.clusters(mesh.admin_url) if c.name == cluster_name
            for h in c.hosts}  # fmt: skip


def test_a_not_ready_replica_leaves_envoys_rotation_and_returns(mesh: LocalMesh) -> None:
    """The runner's prober sees /readyz fail, the EDS files drop the replica and Envoy
    stops listing it (as the endpoints controller and istiod do), then it comes back."""
    url, v1, name = mesh.service_url("backend-service"), backend_cluster("v1"), "backend-v1-1"
    assert name in listed(mesh, v1)
    ready = f"{mesh.instance_url(name)}/admin/ready"
    httpx.put(ready, json={"ready": False}, timeout=5.0).raise_for_status()
    try:
        poll(lambda: name not in listed(mesh, v1), timeout=30, what=f"Envoy to drop {name}")
        assert name not in listed(mesh, backend_cluster())
        assert versions_by_instance(url, 50) == {"backend-v1-0"}
    finally:
        httpx.put(ready, json={"ready": True}, timeout=5.0).raise_for_status()
    poll(lambda: name in listed(mesh, v1), timeout=30, what=f"Envoy to list {name} again")
    poll(
        lambda: name in versions_by_instance(url, 20),
        timeout=30,
        what=f"{name} to get requests again",
    )
