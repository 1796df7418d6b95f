"""The variants of k8s/ on real Envoy: Istio's circuit-breaking task, a 90/10 shift and
the canary split handed to a delegate VirtualService."""

from __future__ import annotations

import collections

import httpx
import pytest

from tests.mesh.conftest import MeshFactory
from tests.mesh.support import VARIANTS, backend_cluster
from tests.mesh.traffic import overflow_burst, stat, versions

pytestmark = pytest.mark.integration


def test_tight_pool_overflows_with_503_and_counts_it(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(VARIANTS / "circuit-breaker")
    results = overflow_burst(mesh, VARIANTS / "circuit-breaker")
    codes = collections.Counter(code for code, _ in results)
    assert codes[200] > 0, codes
    assert codes[503] > 0, codes
    assert all(flag == "true" for code, flag in results if code == 503)
    assert stat(mesh, backend_cluster("v1"), "upstream_rq_pending_overflow") > 0


def test_weighted_split_and_canary_rule(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(VARIANTS / "weighted")
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    seen = versions(url, 1000)
    assert set(seen) == {"v1", "v2"}, seen
    share = seen["v2"] / 1000
    # 10% expected; binomial sd ~0.95% at n=1000, so +-4.5% is beyond 4.7 sd
    assert 0.055 <= share <= 0.145, seen
    assert versions(url, 50, {"x-canary": "true"}) == {"v2": 50}


def test_delegated_routes_split_as_k8s_does(start_mesh: MeshFactory) -> None:
    """k8s/variants/delegation: the root keeps the host, the delegate's canary and stable
    rules route, merged with the root's rule (its name, timeout and retries)."""
    mesh = start_mesh(VARIANTS / "delegation")
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    assert versions(url, 30) == {"v1": 30}
    assert versions(url, 30, {"x-canary": "true"}) == {"v2": 30}
    dump = httpx.get(
        f"{mesh.admin_url}/config_dump", params={"resource": "dynamic_route_configs"}, timeout=10
    ).json()
    tables = [c["route_config"] for c in dump["configs"]]
    (backend,) = [t for t in tables if t["name"].startswith("backend-service.")]
    served = {r["name"]: r["route"]["timeout"] for r in backend["virtual_hosts"][0]["routes"]}
    assert served == {"backend-canary": "5s", "backend-stable": "5s"}
