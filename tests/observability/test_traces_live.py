"""One request through the real local mesh is one trace: gateway Envoy -> frontend server ->
frontend client -> outbound Envoy -> backend server, whatever trace headers came in."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
import pytest

from mesh.runner import LocalMesh
from mesh.translate.tracing import GATEWAY_SERVICE, outbound_service
from tests.observability.accesslog import same_request_id
from tests.observability.conftest import K8S, MeshFactory
from tests.support.html import element

pytestmark = pytest.mark.integration

#: (service, kind) of each hop, caller first.
CHAIN = [
    (GATEWAY_SERVICE, "client"),
    ("frontend", "server"),
    ("frontend", "client"),
    (outbound_service("backend-service"), "client"),
    ("backend", "server"),
]
WAIT_S = 20.0


@pytest.fixture(scope="module")
def mesh(start_mesh: MeshFactory) -> LocalMesh:
    return start_mesh(K8S)


def _spans(mesh: LocalMesh, trace_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{mesh.traces_url}/api/traces/{trace_id}", timeout=5.0)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return list(r.json()["spans"])


def wait_for_chain(mesh: LocalMesh, trace_id: str) -> list[dict[str, Any]]:
    """The trace's spans once every hop of CHAIN has reported (spans arrive in batches)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        spans = _spans(mesh, trace_id)
        have = {(s["service"], s["kind"]) for s in spans}
        if all(hop in have for hop in CHAIN):
            return spans
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_id}: after {WAIT_S}s only {sorted(have)}")
        time.sleep(0.1)  # polling the receiver until the batches arrive


def assert_chain(spans: list[dict[str, Any]], root_parent: str | None) -> None:
    """Exactly one span per hop, each the child of the hop before; the first hop's parent
    is ROOT_PARENT (the caller's span id, or None for a trace Envoy started)."""
    by_hop: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in spans:
        by_hop.setdefault((s["service"], s["kind"]), []).append(s)
    parent = root_parent
    for hop in CHAIN:
        assert len(by_hop.get(hop, [])) == 1, (hop, by_hop.get(hop))
        span = by_hop[hop][0]
        assert span["parent_id"] == parent, (hop, span, parent)
        parent = span["span_id"]
    assert {s["trace_id"] for s in spans} == {spans[0]["trace_id"]}


def test_w3c_traceparent_yields_one_chain(mesh: LocalMesh) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.get(
        f"{mesh.gateway_url}/api/tasks",
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=10.0,
    )
    assert r.status_code == 200, r.text
    assert_chain(wait_for_chain(mesh, trace_id), parent)


def test_b3_headers_only_yield_one_chain(mesh: LocalMesh) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.get(
        f"{mesh.gateway_url}/api/tasks",
        headers={"x-b3-traceid": trace_id, "x-b3-spanid": parent, "x-b3-sampled": "1"},
        timeout=10.0,
    )
    assert r.status_code == 200, r.text
    assert_chain(wait_for_chain(mesh, trace_id), parent)


def _trace_of_request(mesh: LocalMesh, request_id: str) -> str:
    """The trace whose gateway span carries REQUEST_ID (Envoy tags it guid:x-request-id)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        listing = httpx.get(f"{mesh.traces_url}/api/traces", params={"limit": 50}, timeout=5.0)
        for summary in listing.json()["traces"]:
            for span in _spans(mesh, summary["trace_id"]):
                tagged = span["attributes"].get("guid:x-request-id", "")
                if span["service"] == GATEWAY_SERVICE and same_request_id(tagged, request_id):
                    return str(summary["trace_id"])
        if time.monotonic() > deadline:
            raise AssertionError(f"no trace has a span of request {request_id}")
        time.sleep(0.1)  # polling the receiver until the batches arrive


def test_request_without_trace_headers_still_yields_one_connected_trace(
    mesh: LocalMesh,
) -> None:
    request_id = str(uuid.uuid4())
    r = httpx.get(f"{mesh.gateway_url}/", headers={"x-request-id": request_id}, timeout=10.0)
    assert r.status_code == 200, r.text
    trace_id = _trace_of_request(mesh, request_id)
    assert_chain(wait_for_chain(mesh, trace_id), None)
    # the page's badge shows the trace id it was served in, linked to the receiver's view
    assert element(r.text, "badge-trace-id").text == trace_id
    assert f'<a href="{mesh.traces_url}/traces/{trace_id}"><code id="badge-trace-id">' in r.text


def test_backend_span_names_the_version_that_answered(mesh: LocalMesh) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.get(
        f"{mesh.gateway_url}/api/tasks",
        headers={"traceparent": f"00-{trace_id}-{parent}-01", "x-canary": "true"},
        timeout=10.0,
    )
    assert r.status_code == 200, r.text
    spans = wait_for_chain(mesh, trace_id)
    answered = r.headers["x-backend-version"]
    backend = next(s for s in spans if s["service"] == "backend")
    outbound = next(s for s in spans if s["service"] == outbound_service("backend-service"))
    assert backend["version"] == answered
    assert outbound["version"] == answered  # the subset Envoy routed to
