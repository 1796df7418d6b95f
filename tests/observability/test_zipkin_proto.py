"""Zipkin v2 protobuf spans (what the local mesh's Envoy sends) read as their JSON twins.

The bodies are written byte by byte from openzipkin/zipkin-api's zipkin.proto field
numbers, not with mesh/traces/zipkin_proto3.py's own schema, so a wrong field number or
type there fails here. tests/observability/test_traces_live.py covers real Envoy's.
"""

from __future__ import annotations

import struct

import pytest
from starlette.testclient import TestClient

from mesh.traces.app import create_app
from mesh.traces.model import SpanFormatError, spans_from_zipkin
from mesh.traces.store import TraceStore
from mesh.traces.zipkin_proto3 import spans
from tests.observability.test_receiver import PROTOBUF, zipkin_span

TRACE = "463ac35c9f6413ad48485a3953bb6124"
SPAN, PARENT = "a2fb4a1d1a96d312", "0020000000000001"
TAGS = {
    "istio.canonical_service": "backend-service.outbound",
    "upstream_cluster": "outbound|5000|v2|backend-service.default.svc.cluster.local",
    "http.status_code": "503",
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _bytes(number: int, value: bytes) -> bytes:
    return _key(number, 2) + _varint(len(value)) + value


def _fixed64(number: int, value: int) -> bytes:
    return _key(number, 1) + struct.pack("<Q", value)


def _span_bytes(trace_id: str, span_id: str, parent: str | None, tags: dict[str, str]) -> bytes:
    """zipkin.proto3.Span as Envoy writes one: CLIENT, timestamp, duration, endpoint, tags."""
    body = _bytes(1, bytes.fromhex(trace_id))
    if parent:
        body += _bytes(2, bytes.fromhex(parent))
    body += _bytes(3, bytes.fromhex(span_id))
    body += _key(4, 0) + _varint(1)  # kind CLIENT
    body += _bytes(5, b"127.0.0.1:5000")
    body += _fixed64(6, 1_700_000_000_000_000)
    body += _key(7, 0) + _varint(2500)
    body += _bytes(8, _bytes(1, b"taskmesh"))  # local_endpoint.service_name
    all_tags = {"http.method": "GET", "http.url": "http://127.0.0.1:5000/api/tasks", **tags}
    for key, value in all_tags.items():
        body += _bytes(11, _bytes(1, key.encode()) + _bytes(2, value.encode()))
    return body


def list_of_spans(*spans: bytes) -> bytes:
    return b"".join(_bytes(1, span) for span in spans)


def test_a_protobuf_span_reads_as_its_json_twin() -> None:
    body = list_of_spans(
        _span_bytes(TRACE, SPAN, PARENT, TAGS), _span_bytes(TRACE, PARENT, None, {})
    )
    got = spans(body)
    want = spans_from_zipkin(
        [zipkin_span(TRACE, SPAN, PARENT, **TAGS), zipkin_span(TRACE, PARENT, None)]
    )
    assert got == want
    assert got[0].version == "v2" and got[0].status == "error" and got[0].kind == "client"
    assert got[1].parent_id is None


def test_a_64_bit_trace_id_is_left_padded_as_in_json() -> None:
    (span,) = spans(list_of_spans(_span_bytes(TRACE[:16], SPAN, None, {})))
    assert span.trace_id == "0" * 16 + TRACE[:16]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xff\xff", "not a Zipkin ListOfSpans"),
        (list_of_spans(_span_bytes(TRACE, SPAN, None, {})[:-3]), "not a Zipkin ListOfSpans"),
        (list_of_spans(_bytes(1, b"\x01\x02") + _bytes(3, bytes(8))), "trace id must be"),
        (list_of_spans(_bytes(1, bytes(16)) + _bytes(3, b"\x01")), "span id 8"),
    ],
)
def test_bad_protobuf_says_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(SpanFormatError, match=message):
        spans(body)


def test_the_zipkin_endpoint_takes_protobuf_by_content_type() -> None:
    client = TestClient(create_app(TraceStore()))
    body = list_of_spans(_span_bytes(TRACE, SPAN, None, TAGS))
    assert client.post("/api/v2/spans", content=body, headers=PROTOBUF).status_code == 202
    (span,) = client.get(f"/api/traces/{TRACE}").json()["spans"]
    assert span["service"] == "backend-service.outbound" and span["source"] == "zipkin"
    # the same bytes without the protobuf content type are read as JSON, and refused as such
    bad = client.post("/api/v2/spans", content=body)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_spans"
    assert "not JSON" in bad.json()["message"]
    garbage = client.post("/api/v2/spans", content=b"\xff\xff", headers=PROTOBUF)
    assert garbage.status_code == 400 and "ListOfSpans" in garbage.json()["message"]


def test_envoys_little_endian_span_ids_are_read_back_into_header_order() -> None:
    """Envoy writes span and parent ids in host order, trace ids big-endian; the local
    mesh's Envoy says so in the path, and the ids then match the B3/W3C headers'."""
    client = TestClient(create_app(TraceStore()))

    def reverse(hex_id: str) -> str:
        return bytes.fromhex(hex_id)[::-1].hex()

    body = list_of_spans(_span_bytes(TRACE, reverse(SPAN), reverse(PARENT), TAGS))
    r = client.post("/api/v2/spans?span_ids=little-endian", content=body, headers=PROTOBUF)
    assert r.status_code == 202
    (span,) = client.get(f"/api/traces/{TRACE}").json()["spans"]
    assert (span["trace_id"], span["span_id"], span["parent_id"]) == (TRACE, SPAN, PARENT)
    bad = client.post("/api/v2/spans?span_ids=middle", content=body, headers=PROTOBUF)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_span_ids"
    assert "middle" in bad.json()["message"]


def test_the_local_mesh_tells_the_receiver_envoys_byte_order() -> None:
    from mesh.translate.tracing import hcm_tracing

    provider = hcm_tracing("svc")["provider"]["typed_config"]
    assert provider["collector_endpoint_version"] == "HTTP_PROTO"
    assert provider["collector_endpoint"].endswith("?span_ids=little-endian")
