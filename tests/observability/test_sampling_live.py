"""A Telemetry's randomSamplingPercentage reaches the real Envoy: at 0 % plain requests leave
no Envoy span at the trace receiver, while a request the client forces (Envoy's
x-client-trace-id) is still traced (mesh/translate/telemetry.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from mesh.runner import LocalMesh
from mesh.translate.tracing import GATEWAY_SERVICE, outbound_service
from tests.mesh.support import overlay
from tests.observability.accesslog import same_request_id
from tests.observability.conftest import MeshFactory

pytestmark = pytest.mark.integration

WAIT_S = 20.0
PLAIN_REQUESTS = 20
ENVOY_SERVICES = {GATEWAY_SERVICE, outbound_service("backend-service")}
# In the root namespace: reaches the gateway and the outbound listeners alike.
ZERO_PERCENT = {
    "apiVersion": "telemetry.istio.io/v1",
    "kind": "Telemetry",
    "metadata": {"name": "mesh-default", "namespace": "istio-system"},
    "spec": {"tracing": [{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 0}]},
}


@pytest.fixture(scope="module")
def mesh(start_mesh: MeshFactory, tmp_path_factory: pytest.TempPathFactory) -> LocalMesh:
    tree = overlay(tmp_path_factory.mktemp("sampling") / "o", extra=[ZERO_PERCENT])
    return start_mesh(tree)


def _envoy_spans(mesh: LocalMesh) -> list[dict[str, Any]]:
    """Every span the receiver holds from the local mesh's Envoy."""
    listing = httpx.get(f"{mesh.traces_url}/api/traces", params={"limit": 10000}, timeout=5.0)
    listing.raise_for_status()
    out = []
    for summary in listing.json()["traces"]:
        if ENVOY_SERVICES & set(summary["services"]):
            r = httpx.get(f"{mesh.traces_url}/api/traces/{summary['trace_id']}", timeout=5.0)
            out += [s for s in r.json()["spans"] if s["service"] in ENVOY_SERVICES]
    return out


def _rid(span: dict[str, Any]) -> str:
    return str(span["attributes"].get("guid:x-request-id", ""))


def _request_ids(spans: list[dict[str, Any]]) -> list[str]:
    return [_rid(s) for s in spans]


def test_zero_percent_traces_only_the_forced_request(mesh: LocalMesh) -> None:
    plain = [str(uuid.uuid4()) for _ in range(PLAIN_REQUESTS)]
    with httpx.Client(timeout=10.0) as client:
        for request_id in plain:
            r = client.get(f"{mesh.gateway_url}/api/tasks", headers={"x-request-id": request_id})
            assert r.status_code == 200, r.text
        forced = str(uuid.uuid4())
        r = client.get(
            f"{mesh.gateway_url}/api/tasks",
            headers={"x-request-id": forced, "x-client-trace-id": uuid.uuid4().hex},
        )
        assert r.status_code == 200, r.text
    # Envoy sends its spans in order: once the forced request's are in, the plain ones
    # would be too had they been sampled.
    deadline = time.monotonic() + WAIT_S
    while True:
        spans = _envoy_spans(mesh)
        hops = {s["service"] for s in spans if same_request_id(_rid(s), forced)}
        if hops == ENVOY_SERVICES:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"forced request {forced}: spans only from {sorted(hops)}")
        time.sleep(0.1)  # polling the receiver until Envoy's batch arrives
    leaked = [rid for rid in _request_ids(spans) if any(same_request_id(rid, p) for p in plain)]
    assert leaked == [], leaked
    assert all(same_request_id(rid, forced) for rid in _request_ids(spans)), spans
