"""Envoy's access log (Istio's default TEXT format) names why the mesh failed a request:
UO for a circuit-breaker overflow, UH when every host of the cluster is ejected."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mesh.manifests import load
from mesh.runner import LocalMesh
from tests.observability.accesslog import parse, wait_for_entry
from tests.observability.conftest import VARIANTS, MeshFactory

pytestmark = pytest.mark.integration

CIRCUIT_BREAKER = VARIANTS / "circuit-breaker"
EJECT_DEADLINE_S = 30.0  # ends at the first "no healthy upstream"; room for a loaded machine


@pytest.fixture(scope="module")
def mesh(start_mesh: MeshFactory) -> LocalMesh:
    return start_mesh(CIRCUIT_BREAKER)


def _fault(mesh: LocalMesh, instance: str, body: dict[str, float] | None) -> None:
    url = f"{mesh.instance_url(instance)}/admin/fault"
    r = httpx.put(url, json=body, timeout=5.0) if body else httpx.delete(url, timeout=5.0)
    r.raise_for_status()


def _get(url: str, request_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    # one connection per request, as fortio's -c clients do with keep-alive off
    with httpx.Client(timeout=10.0) as client:
        return client.get(url, headers={"x-request-id": request_id, **(headers or {})})


def test_parse_reads_istio_text_format() -> None:
    line = (
        '[2026-11-27T21:50:34.354Z] "GET /api/tasks HTTP/1.1" 503 UO,URX upstream_reset - '
        '"-" 0 81 0 - "-" "curl/8" "3bed8897-81ae-9030-9e71-19ab372b63a3" "backend" "-" '
        "outbound|5000|v1|backend-service.default.svc.cluster.local - 127.0.0.1:5000 "
        "127.0.0.1:4242 - stable"
    )
    entry = parse(line)
    assert entry is not None
    assert (entry.code, entry.flags) == (503, frozenset({"UO", "URX"}))
    assert entry.request_id == "3bed8897-81ae-9030-9e71-19ab372b63a3"
    assert entry.cluster.startswith("outbound|5000|v1|")
    assert parse("[2026-11-27 21:50:33.294][9690][warning][main] not an access log") is None


def test_overflowed_request_is_logged_with_UO(mesh: LocalMesh) -> None:
    replicas = [
        i
        for d in load(CIRCUIT_BREAKER).deployments
        if d.name == "backend-v1"
        for i in d.instance_names()
    ]
    slow = {"status": 503, "error_rate": 0.0, "delay_ms": 300, "delay_rate": 1.0}
    for instance in replicas:  # slow answers keep the one allowed connection busy
        _fault(mesh, instance, slow)
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    ids = [str(uuid.uuid4()) for _ in range(24)]
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            replies = list(pool.map(lambda rid: (rid, _get(url, rid)), ids))
    finally:
        for instance in replicas:
            _fault(mesh, instance, None)
    overflowed = [rid for rid, r in replies if r.headers.get("x-envoy-overloaded") == "true"]
    served = [rid for rid, r in replies if r.status_code == 200]
    assert overflowed and served, [r.status_code for _, r in replies]
    for rid in overflowed:
        entry = wait_for_entry(mesh, rid)
        assert entry.code == 503 and "UO" in entry.flags, entry
    entry = wait_for_entry(mesh, served[0])
    assert entry.code == 200 and not entry.flags, entry


def test_request_with_every_host_ejected_is_logged_with_UH(mesh: LocalMesh) -> None:
    # backend-v2-0 is the only host of subset v2; this variant ejects on the first 5xx
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    canary = {"x-canary": "true"}
    _fault(mesh, "backend-v2-0", {"status": 503, "error_rate": 1.0})
    try:
        failing = str(uuid.uuid4())
        assert _get(url, failing, canary).status_code == 503
        # Envoy ejects on its main thread once the worker reports the 5xx, so the next
        # request or two may still reach the host: send until one finds no host at all.
        deadline = time.monotonic() + EJECT_DEADLINE_S
        while True:
            ejected = str(uuid.uuid4())
            r = _get(url, ejected, canary)
            if r.status_code != 503 or r.text.startswith("no healthy upstream"):
                break
            assert time.monotonic() < deadline, f"backend-v2-0 not ejected: {r.text}"
    finally:
        _fault(mesh, "backend-v2-0", None)
    assert r.status_code == 503 and r.text.startswith("no healthy upstream"), r.text
    first = wait_for_entry(mesh, failing)
    assert first.code == 503 and "UH" not in first.flags, first  # the app's own 503
    entry = wait_for_entry(mesh, ejected)
    assert entry.code == 503 and "UH" in entry.flags, entry
    assert entry.cluster.startswith("outbound|5000|v2|"), entry
