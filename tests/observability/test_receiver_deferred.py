"""The receiver checks a protobuf report on arrival and reads it into the store only when
the store is read (mesh/traces/store.py): what that must not change, and its bound."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.testclient import TestClient

from mesh.traces.app import create_app
from mesh.traces.model import Span, SpanFormatError
from mesh.traces.store import PENDING_PER_TRACE, TraceStore
from tests.observability.test_receiver import PROTOBUF, _span, otlp_body
from tests.observability.test_zipkin_proto import (
    PARENT,
    SPAN,
    TAGS,
    TRACE,
    _bytes,
    _span_bytes,
    list_of_spans,
)


class Report:
    """A deferred report of spans, counting how often it is read."""

    def __init__(self, *spans: Span) -> None:
        self.spans = list(spans)
        self.reads = 0

    def __call__(self) -> list[Span]:
        self.reads += 1
        return self.spans


def _trace(n: int) -> str:
    return f"{n:032x}"


def test_a_report_is_read_once_when_the_store_is_read_in_arrival_order() -> None:
    store = TraceStore()
    first, third = (
        Report(_span(_trace(1), "1" * 16, None, 1)),
        Report(_span(_trace(3), "3" * 16, None, 3), _span(_trace(1), "4" * 16, "1" * 16, 4)),
    )
    store.defer(1, first)
    assert first.reads == 0 and store.pending_spans == 1
    store.add([_span(_trace(2), "2" * 16, None, 2)])  # read now, after what came first
    assert first.reads == 1 and store.pending_spans == 0
    store.defer(2, third)
    # trace 1 got a span last, so it is the newest, as if every report had been read at once
    assert [t for t, _ in store.recent(10)] == [_trace(1), _trace(3), _trace(2)]
    assert len(store.get(_trace(1)) or []) == 2
    assert (first.reads, third.reads, store.pending_spans) == (1, 1, 0)


def test_unread_reports_past_the_cap_go_oldest_first_and_are_counted() -> None:
    store = TraceStore(max_traces=2)
    assert store.pending_cap == 2 * PENDING_PER_TRACE
    size = PENDING_PER_TRACE
    reports = [
        Report(*(_span(_trace(r), f"{i + 1:016x}", None, i) for i in range(size))) for r in range(3)
    ]
    for report in reports:
        store.defer(size, report)
    assert store.pending_spans == store.pending_cap
    assert store.dropped_spans == size
    assert [t for t, _ in store.recent(10)] == [_trace(2), _trace(1)]
    assert [r.reads for r in reports] == [0, 1, 1]


def test_healthz_says_how_many_spans_were_let_go() -> None:
    store = TraceStore(max_traces=1)
    client = TestClient(create_app(store))
    assert client.get("/healthz").json()["dropped_spans"] == 0
    for n in range(3):
        store.defer(store.pending_cap, Report(_span(_trace(n), "1" * 16, None, n)))
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "traces": 1, "dropped_spans": 2 * store.pending_cap}


def test_one_report_over_the_cap_is_still_kept() -> None:
    store = TraceStore(max_traces=1)
    store.defer(store.pending_cap + 5, Report(_span(_trace(7), "1" * 16, None, 1)))
    assert store.dropped_spans == 0 and store.get(_trace(7)) is not None


def test_a_report_that_fails_when_read_is_dropped_and_counted() -> None:
    def broken() -> list[Span]:
        raise SpanFormatError("unreadable")

    store = TraceStore()
    store.defer(3, broken)
    store.defer(1, Report(_span(_trace(9), "1" * 16, None, 1)))
    assert [t for t, _ in store.recent(10)] == [_trace(9)]
    assert store.dropped_spans == 3


@pytest.fixture
def parts() -> tuple[TraceStore, TestClient]:
    store = TraceStore()
    return store, TestClient(create_app(store))


def test_protobuf_reports_wait_unread_until_someone_reads(
    parts: tuple[TraceStore, TestClient],
) -> None:
    store, client = parts
    zipkin = list_of_spans(
        _span_bytes(TRACE, SPAN, PARENT, TAGS), _span_bytes(TRACE, PARENT, None, {})
    )
    assert client.post("/api/v2/spans", content=zipkin, headers=PROTOBUF).status_code == 202
    otlp, finished = otlp_body()
    assert client.post("/v1/traces", content=otlp, headers=PROTOBUF).status_code == 200
    assert store.pending_spans == 2 + len(finished)
    listing = client.get("/api/traces", params={"limit": 5}).json()["traces"]
    assert store.pending_spans == 0
    assert listing[0]["trace_id"] == format(finished[0].context.trace_id, "032x")
    assert listing[1]["trace_id"] == TRACE and listing[1]["span_count"] == 2


def _otlp_with_trace_id(trace_id: bytes) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.trace_id, span.span_id = "GET /", trace_id, bytes(8)
    return request.SerializeToString()


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v2/spans", list_of_spans(_bytes(1, b"\x01\x02") + _bytes(3, bytes(8))),
         "trace id must be"),
        ("/api/v2/spans", list_of_spans(_bytes(1, bytes(16)) + _bytes(3, b"\x01")), "span id 8"),
        ("/api/v2/spans", list_of_spans(_span_bytes(TRACE, SPAN, None, {}), _bytes(1, bytes(16))
         + _bytes(2, b"\x01") + _bytes(3, bytes(8))), "span [1]: parent id"),
        ("/v1/traces", _otlp_with_trace_id(b"\x01\x02\x03"), "id of a wrong size"),
    ],
)  # fmt: skip
def test_a_bad_report_is_refused_on_arrival_and_nothing_of_it_is_kept(
    parts: tuple[TraceStore, TestClient], path: str, body: bytes, message: str
) -> None:
    store, client = parts
    r = client.post(path, content=body, headers=PROTOBUF)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_spans" and message in r.json()["message"]
    assert store.pending_spans == 0 and len(store) == 0
