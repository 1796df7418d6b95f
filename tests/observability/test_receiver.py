"""The trace receiver in process: OTLP and Zipkin in, the store, the JSON/HTML read side."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.testclient import TestClient

from mesh.traces.app import create_app
from mesh.traces.model import (
    Span,
    SpanFormatError,
    normalize_trace_id,
    spans_from_otlp,
    spans_from_zipkin,
)
from mesh.traces.render import text, tree
from mesh.traces.store import TraceStore, summary

PROTOBUF = {"content-type": "application/x-protobuf"}


def otlp_body(service: str = "frontend", version: str = "v2") -> tuple[bytes, list[Any]]:
    """A real OTLP export request: a SERVER span and its failing CLIENT child."""
    exporter = InMemorySpanExporter()
    resource = Resource.create(
        {"service.name": service, "service.version": version, "service.instance.id": "fe-0"}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("GET /api/tasks", kind=SpanKind.CLIENT) as child:
            child.set_attribute("http.response.status_code", 503)
            child.set_status(Status(StatusCode.ERROR))
    finished = list(exporter.get_finished_spans())
    return encode_spans(finished).SerializeToString(), finished


def zipkin_span(trace_id: str, span_id: str, parent: str | None, **tags: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "traceId": trace_id,
        "id": span_id,
        "name": "127.0.0.1:5000",
        "kind": "CLIENT",
        "timestamp": 1_700_000_000_000_000,
        "duration": 2500,
        "localEndpoint": {"serviceName": "taskmesh"},
        "tags": {"http.method": "GET", "http.url": "http://127.0.0.1:5000/api/tasks", **tags},
    }
    if parent:
        item["parentId"] = parent
    return item


def test_otlp_spans_keep_ids_parents_service_version_and_status() -> None:
    body, finished = otlp_body()
    spans = {s.name: s for s in spans_from_otlp(body)}
    server, client = spans["GET /"], spans["GET /api/tasks"]
    sdk = {s.name: s for s in finished}
    assert server.trace_id == format(sdk["GET /"].context.trace_id, "032x")
    assert client.parent_id == server.span_id == format(sdk["GET /"].context.span_id, "016x")
    assert server.parent_id is None
    assert (client.service, client.version, client.instance) == ("frontend", "v2", "fe-0")
    assert (server.kind, client.kind) == ("server", "client")
    assert client.status == "error"
    assert client.attributes["http.response.status_code"] == "503"


def test_otlp_garbage_is_a_format_error() -> None:
    with pytest.raises(SpanFormatError, match="OTLP"):
        spans_from_otlp(b"\xff\xff\xff not protobuf")


def test_zipkin_span_from_envoy_reads_service_tag_subset_and_64_bit_ids() -> None:
    item = zipkin_span(
        "463ac35c9f6413ad",
        "a2fb4a1d1a96d312",
        "0020000000000001",
        **{
            "istio.canonical_service": "backend-service.outbound",
            "upstream_cluster": "outbound|5000|v2|backend-service.default.svc.cluster.local",
            "http.status_code": "503",
            "error": "true",
        },
    )
    (span,) = spans_from_zipkin([item])
    assert span.trace_id == "0000000000000000463ac35c9f6413ad"
    assert span.service == "backend-service.outbound"
    assert span.version == "v2"
    assert span.status == "error"
    assert span.name == "GET /api/tasks"
    assert span.attributes["envoy.operation"] == "127.0.0.1:5000"
    assert span.duration_ms == 2.5


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"traceId": "x"}, "JSON list"),
        (["nope"], "not a JSON object"),
        ([{"id": "a2fb4a1d1a96d312"}], "has no traceId"),
        ([{"traceId": "xyz", "id": "a2fb4a1d1a96d312"}], "not 16 or 32 hex"),
    ],
)
def test_bad_zipkin_payloads_say_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(SpanFormatError, match=message):
        spans_from_zipkin(payload)


def test_normalize_trace_id() -> None:
    assert normalize_trace_id("ABCDEF0123456789") == "0" * 16 + "abcdef0123456789"
    with pytest.raises(ValueError, match="hex"):
        normalize_trace_id("g" * 32)


def _span(trace: str, span: str, parent: str | None, start: int, route: str = "/x") -> Span:
    return Span(
        trace, span, parent, "GET", "svc", "server", start, start + 1_000_000, "ok",
        attributes={"http.route": route},
    )  # fmt: skip


def test_store_keeps_the_last_n_traces_newest_first_and_hides_probe_traces() -> None:
    store = TraceStore(max_traces=2)
    store.add([_span("a" * 32, "1" * 16, None, 1)])
    store.add([_span("b" * 32, "2" * 16, None, 2, route="/readyz")])
    store.add([_span("c" * 32, "3" * 16, None, 3)])
    assert [t for t, _ in store.recent(10)] == ["c" * 32, "a" * 32]  # a probe evicts nothing
    assert [t for t, _ in store.recent(10, probes=True)] == ["c" * 32, "b" * 32, "a" * 32]
    store.add([_span("d" * 32, "4" * 16, None, 4)])
    assert store.get("a" * 32) is None  # the oldest real trace goes
    store.add([_span("b" * 32, "5" * 16, "2" * 16, 5)])  # a real span joins the probe trace
    assert [t for t, _ in store.recent(10)] == ["b" * 32, "d" * 32]
    assert len(store.get("b" * 32) or []) == 2


def test_probe_traces_have_a_bounded_ring_of_their_own() -> None:
    store = TraceStore(max_traces=500)
    store.add([_span("e" * 32, "1" * 16, None, 1)])
    for n in range(store.max_probe_traces + 10):
        store.add([_span(f"{n:032x}", "2" * 16, None, 10 + n, route="/healthz")])
    assert store.get(f"{0:032x}") is None
    assert store.get("e" * 32) is not None
    assert len(store) == store.max_probe_traces + 1


def test_tree_nests_children_and_shows_orphans_as_roots() -> None:
    t = "d" * 32
    spans = [
        _span(t, "2" * 16, "1" * 16, 2),
        _span(t, "1" * 16, None, 1),
        _span(t, "3" * 16, "2" * 16, 3),
        _span(t, "9" * 16, "8" * 16, 4),  # its parent never arrived
    ]
    assert [(d, s.span_id[0]) for d, s in tree(spans)] == [(0, "1"), (1, "2"), (2, "3"), (0, "9")]
    lines = text(t, spans).splitlines()
    assert lines[0].startswith(f"trace {t}  4 spans")
    assert lines[3].startswith("      svc")  # depth 2
    assert summary(t, spans)["span_count"] == 4


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(TraceStore()))


def test_app_takes_otlp_and_zipkin_and_serves_one_trace(client: TestClient) -> None:
    body, finished = otlp_body()
    trace_id = format(finished[0].context.trace_id, "032x")
    r = client.post("/v1/traces", content=gzip.compress(body),
                    headers={**PROTOBUF, "content-encoding": "gzip"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    server = next(s for s in finished if s.parent is None)
    envoy = zipkin_span(trace_id, "e" * 16, format(server.context.span_id, "016x"))
    assert client.post("/api/v2/spans", json=[envoy]).status_code == 202
    got = client.get(f"/api/traces/{trace_id}").json()
    assert len(got["spans"]) == 3
    listing = client.get("/api/traces", params={"limit": 1}).json()["traces"]
    assert [t["trace_id"] for t in listing] == [trace_id]
    assert listing[0]["errors"] == 1
    page = client.get(f"/traces/{trace_id}")
    assert page.status_code == 200 and "GET /api/tasks" in page.text
    assert trace_id in client.get("/").text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    [
        ("post", "/v1/traces", {"content": b"x", "headers": {"content-type": "text/plain"}},
         415, "unsupported_media_type"),
        ("post", "/v1/traces", {"content": b"\xff\xff\xff", "headers": PROTOBUF}, 400, "bad_spans"),
        ("post", "/v1/traces", {"content": b"x", "headers": {**PROTOBUF,
         "content-encoding": "gzip"}}, 400, "bad_spans"),
        ("post", "/api/v2/spans", {"content": b"{not json"}, 400, "bad_spans"),
        ("get", "/api/traces/nothex", {}, 400, "bad_trace_id"),
        ("get", "/api/traces/" + "a" * 32, {}, 404, "not_found"),
        ("get", "/api/traces?limit=0", {}, 400, "bad_limit"),
    ],
)  # fmt: skip
def test_app_rejects_bad_input_with_a_json_error(
    client: TestClient, method: str, path: str, kwargs: dict, status: int, error: str
) -> None:
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert r.json()["message"]


def test_span_json_round_trip() -> None:
    span = _span("e" * 32, "5" * 16, None, 10)
    assert Span.from_json(json.loads(json.dumps(span.to_json()))) == span
