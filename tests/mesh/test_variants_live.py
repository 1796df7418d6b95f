"""The variants of k8s/ on real Envoy: Istio's circuit-breaking task and a 90/10 shift."""

from __future__ import annotations

import collections

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
