"""k8s/variants/gateway-api (Gateway + HTTPRoute) on real Envoy and real processes: the
canary, the 90/10 split, the circuit breaker and outlier ejection, as the Istio-API tests
show them for k8s/ (test_local_mesh.py, test_variants_live.py)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.support import VARIANTS, dr_patch, overlay
from tests.mesh.traffic import ejected_then_returns, overflow_burst, stat, versions

pytestmark = pytest.mark.integration

GATEWAY_API = VARIANTS / "gateway-api"
V1 = "outbound|5000||backend-v1.default.svc.cluster.local"
V2 = "outbound|5000||backend-v2.default.svc.cluster.local"


def with_rules(where: Path, route: str, rules: list[dict[str, Any]]) -> Path:
    """The gateway-api variant with HTTPRoute ROUTE's rules replaced by RULES."""
    patch = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": route},
        "spec": {"rules": rules},
    }
    return overlay(where, patches=[patch], base=GATEWAY_API)


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory) -> LocalMesh:
    return start_mesh(GATEWAY_API)


def test_canary_header_picks_v2_and_everything_else_v1(mesh: LocalMesh) -> None:
    url = f"{mesh.gateway_url}/api/tasks"  # gateway HTTPRoute -> frontend -> mesh HTTPRoute
    assert versions(url, 100) == {"v1": 100}
    assert versions(url, 100, {"x-canary": "true"}) == {"v2": 100}
    assert versions(url, 20, {"x-canary": "True"}) == {"v1": 20}  # Exact is case-sensitive
    direct = f"{mesh.service_url('backend-service')}/api/tasks"
    assert versions(direct, 50, {"x-canary": "true"}) == {"v2": 50}
    assert stat(mesh, V2, "upstream_rq_completed") >= 150


def test_admin_is_refused_at_the_edge_by_whole_path_segments(mesh: LocalMesh) -> None:
    for path in ("/admin", "/admin/fault"):
        r = httpx.get(f"{mesh.gateway_url}{path}", timeout=10.0)
        assert r.status_code == 500, (path, r.status_code, r.text)
        assert "x-envoy-upstream-service-time" not in r.headers  # Envoy's own answer
    # PathPrefix /admin does not match /administrator: that reaches the frontend (its 404)
    r = httpx.get(f"{mesh.gateway_url}/administrator", timeout=10.0)
    assert r.status_code == 404 and "x-envoy-upstream-service-time" in r.headers


def test_the_per_version_services_have_their_own_listeners(mesh: LocalMesh) -> None:
    assert versions(f"{mesh.service_url('backend-v2')}/api/tasks", 20) == {"v2": 20}
    assert versions(f"{mesh.service_url('backend-v1')}/api/tasks", 20) == {"v1": 20}


def test_failing_v1_replica_is_ejected_from_the_v1_service_and_returns(mesh: LocalMesh) -> None:
    url = mesh.service_url("backend-service")
    ejected_then_returns(mesh, url, V1, "backend-v1-0")
    with httpx.Client(timeout=10.0) as client:
        seen = {client.get(f"{url}/api/tasks").headers["x-backend-instance"] for _ in range(100)}
    assert "backend-v1-0" in seen


def test_weighted_split_and_canary_rule(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(VARIANTS / "gateway-api-weighted")
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    seen = versions(url, 1000)
    assert set(seen) == {"v1", "v2"}, seen
    # 10% expected; binomial sd ~0.95% at n=1000, so +-4.5% is beyond 4.7 sd
    assert 0.055 <= seen["v2"] / 1000 <= 0.145, seen
    assert versions(url, 50, {"x-canary": "true"}) == {"v2": 50}


def test_tight_pool_on_the_v1_service_overflows_with_503(
    start_mesh: MeshFactory, tmp_path: Path
) -> None:
    """The circuit-breaker variant's pool on backend-v1's DestinationRule."""
    tight = {
        "host": "backend-v1",
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": 1},
                "http": {"http1MaxPendingRequests": 1, "maxRequestsPerConnection": 1},
            }
        },
    }
    where = overlay(tmp_path / "tight", patches=[dr_patch("backend-v1", tight)], base=GATEWAY_API)
    mesh = start_mesh(where)
    results = overflow_burst(mesh, where)
    codes = collections.Counter(code for code, _ in results)
    assert codes[200] > 0 and codes[503] > 0, codes
    assert all(flag == "true" for code, flag in results if code == 503)
    assert stat(mesh, V1, "upstream_rq_pending_overflow") > 0
    assert stat(mesh, V2, "upstream_rq_pending_overflow") == 0


def test_path_method_and_header_modifier_through_real_envoy(
    start_mesh: MeshFactory, tmp_path: Path
) -> None:
    """A rule for GET /api/headers that sets a request header and goes to v2, beside the
    catch-all to v1: the match is by whole path segments and method, the header arrives."""
    rules = [
        {"name": "stable", "backendRefs": [{"name": "backend-v1", "port": 5000}]},
        {
            "name": "tagged",
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/api/headers/"}, "method": "GET"}
            ],
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [{"name": "X-Route", "value": "tagged"}]},
                }
            ],
            "backendRefs": [{"name": "backend-v2", "port": 5000}],
        },
    ]
    mesh = start_mesh(with_rules(tmp_path / "tagged", "backend", rules))
    url = mesh.service_url("backend-service")
    with httpx.Client(timeout=10.0) as client:
        r = client.get(f"{url}/api/headers")
        assert r.json()["version"] == "v2" and r.json()["headers"]["x-route"] == "tagged"
        r = client.post(f"{url}/api/headers")  # method GET only: the catch-all, v1
        assert r.headers["x-backend-version"] == "v1"
        r = client.get(f"{url}/api/headersx")  # not the /api/headers segment
        assert r.headers["x-backend-version"] == "v1"
    assert versions(f"{url}/api/tasks", 20) == {"v1": 20}


def test_url_rewrite_and_redirect_through_real_envoy(
    start_mesh: MeshFactory, tmp_path: Path
) -> None:
    """The edge route with a URLRewrite (/tasks/... -> /api/tasks/..., the prefix swapped by
    whole segments) and a RequestRedirect (/old/... -> 301 to /api/...), beside the
    catch-all to the frontend."""
    rules = [
        {"name": "frontend", "backendRefs": [{"name": "frontend-service", "port": 8000}]},
        {
            "name": "short",
            "matches": [{"path": {"type": "PathPrefix", "value": "/tasks"}}],
            "filters": [
                {
                    "type": "URLRewrite",
                    "urlRewrite": {
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api/tasks"}
                    },
                }
            ],  # fmt: skip
            "backendRefs": [{"name": "frontend-service", "port": 8000}],
        },
        {
            "name": "moved",
            "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
            "filters": [
                {
                    "type": "RequestRedirect",
                    "requestRedirect": {
                        "statusCode": 301,
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/api"},
                    },
                }
            ],
        },
    ]
    mesh = start_mesh(with_rules(tmp_path / "paths", "frontend", rules))
    gw = mesh.gateway_url
    with httpx.Client(timeout=10.0) as client:
        r = client.get(f"{gw}/tasks")  # rewritten to /api/tasks: the frontend's JSON list
        assert r.status_code == 200 and r.json()["version"] == "v1", r.text
        r = client.get(f"{gw}/tasks/1")  # the rest of the path is kept
        assert r.status_code == 200 and r.json()["id"] == 1, r.text
        r = client.get(f"{gw}/old/tasks")
        assert r.status_code == 301
        # the request's own host and port are kept (no port: the listener's 80 is http's)
        assert r.headers["location"] == f"{gw}/api/tasks"
        assert client.get(r.headers["location"]).json()["version"] == "v1"
