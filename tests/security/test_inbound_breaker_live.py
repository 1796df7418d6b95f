"""The --sidecars inbound breaker trips as in a cluster (issue 14 item 4): with the
circuit-breaker variant (maxConnections 1, http1MaxPendingRequests 1), concurrent callers
of one backend sidecar get 503s from that sidecar's own inbound cluster and its
`upstream_rq_pending_overflow` counts them. With Envoy's 1024 defaults there (before),
every request waited its turn and none overflowed."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest

from mesh import admin
from mesh.ca import workload_identity
from mesh.runner import LocalMesh
from tests.mesh.support import VARIANTS
from tests.mesh.traffic import clear_fault, set_fault
from tests.security.test_sidecar_mesh import _client_certs, _context, _sidecar
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

CALLERS = 8


@pytest.fixture(scope="module", name="mesh")
def _mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = new_mesh(
        VARIANTS / "circuit-breaker", tmp_path_factory.mktemp("breaker-state"), sidecars=True
    )
    with mesh:
        yield mesh


def test_concurrent_callers_overflow_the_sidecars_inbound_cluster(mesh: LocalMesh) -> None:
    sidecar = _sidecar(mesh, "backend-v1-0")
    certs = _client_certs(mesh, workload_identity("default", "frontend"), "frontend")
    url = f"https://127.0.0.1:{sidecar.inbound_port}/api/tasks"

    def call(_: int) -> httpx.Response:
        with httpx.Client(verify=_context(mesh, certs), timeout=20.0) as client:
            return client.get(url)

    # each request holds the one connection for 400 ms, so the callers pile up
    set_fault(mesh, "backend-v1-0", status=503, error_rate=0.0, delay_ms=400, delay_rate=1.0)
    try:
        with concurrent.futures.ThreadPoolExecutor(CALLERS) as pool:
            replies = list(pool.map(call, range(CALLERS)))
    finally:
        clear_fault(mesh, "backend-v1-0")
    codes = sorted(r.status_code for r in replies)
    overflowed = [r for r in replies if r.status_code == 503]
    assert 200 in codes and overflowed, codes
    assert all(r.headers.get("x-envoy-overloaded") == "true" for r in overflowed)
    overflow = admin.cluster_stat(
        sidecar.admin_url, sidecar.inbound_cluster, "upstream_rq_pending_overflow"
    )
    assert overflow > 0
