"""Zipkin v2 spans as protobuf (`zipkin.proto3.ListOfSpans`), read as their JSON twins.

The local mesh's Envoy reports its spans as `HTTP_PROTO` (mesh/translate/tracing.py says
why: the JSON encoding cost Envoy more CPU than proxying the request). Zipkin's own
server takes both encodings on `POST /api/v2/spans`, told apart by the content type, and
so does the receiver: a protobuf span is read here into the values Zipkin's v2 JSON would
have carried and built by the builder the JSON reader uses (mesh/traces/model.py's
`zipkin_span`), without JSON-shaped dicts in between (they cost ~20 us a span).

The schema is openzipkin/zipkin-api's `zipkin.proto` (package `zipkin.proto3`), declared
here field by field because no PyPI package ships its generated code.

Byte order: zipkin.proto says a trace id is big-endian and a span id "8 opaque bytes".
Envoy writes trace ids big-endian but span and parent ids in the host's order
(source/extensions/tracers/zipkin/zipkin_core_types.h: `traceIdAsByteString` uses
`Util::toBigEndianByteString`, `idAsByteString` and `parentIdAsByteString` use
`Util::toByteString`), so on x86 and arm64 they arrive reversed against the hex ids in
the B3 and W3C headers, which the services' OTLP spans name. The local mesh's Envoy
therefore posts to `/api/v2/spans?span_ids=little-endian`, and those ids are read back
into header order (`little_endian_ids`).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from mesh.traces.model import Span, SpanFormatError, parsed, zipkin_span

_F = descriptor_pb2.FieldDescriptorProto
_KIND_NAMES = {1: "client", 2: "server", 3: "producer", 4: "consumer"}


def _field(name: str, number: int, kind: int, *, type_name: str = "", repeated: bool = False) -> _F:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _schema() -> descriptor_pb2.FileDescriptorProto:
    """zipkin.proto's messages (the enum `Kind` is read as its number)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="taskmesh/zipkin.proto", package="zipkin.proto3", syntax="proto3"
    )
    endpoint = proto.message_type.add(name="Endpoint")
    endpoint.field.extend(
        [
            _field("service_name", 1, _F.TYPE_STRING),
            _field("ipv4", 2, _F.TYPE_BYTES),
            _field("ipv6", 3, _F.TYPE_BYTES),
            _field("port", 4, _F.TYPE_INT32),
        ]
    )
    annotation = proto.message_type.add(name="Annotation")
    annotation.field.extend(
        [_field("timestamp", 1, _F.TYPE_FIXED64), _field("value", 2, _F.TYPE_STRING)]
    )
    span = proto.message_type.add(name="Span")
    tags = span.nested_type.add(name="TagsEntry")
    tags.field.extend([_field("key", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_STRING)])
    tags.options.map_entry = True
    span.field.extend(
        [
            _field("trace_id", 1, _F.TYPE_BYTES),
            _field("parent_id", 2, _F.TYPE_BYTES),
            _field("id", 3, _F.TYPE_BYTES),
            _field("kind", 4, _F.TYPE_INT32),  # an enum on the wire is a varint
            _field("name", 5, _F.TYPE_STRING),
            _field("timestamp", 6, _F.TYPE_FIXED64),
            _field("duration", 7, _F.TYPE_UINT64),
            _field("local_endpoint", 8, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint"),
            _field("remote_endpoint", 9, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint"),
            _field(
                "annotations",
                10,
                _F.TYPE_MESSAGE,
                type_name=".zipkin.proto3.Annotation",
                repeated=True,
            ),
            _field(
                "tags",
                11,
                _F.TYPE_MESSAGE,
                type_name=".zipkin.proto3.Span.TagsEntry",
                repeated=True,
            ),
            _field("debug", 12, _F.TYPE_BOOL),
            _field("shared", 13, _F.TYPE_BOOL),
        ]
    )
    spans = proto.message_type.add(name="ListOfSpans")
    spans.field.append(
        _field("spans", 1, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Span", repeated=True)
    )
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_schema())
ListOfSpans = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("zipkin.proto3.ListOfSpans")
)


def _check_ids(span: Any, index: int) -> None:
    if len(span.trace_id) not in (8, 16) or len(span.id) != 8:
        raise SpanFormatError(f"span [{index}]: trace id must be 8 or 16 bytes, span id 8")
    if span.parent_id and len(span.parent_id) != 8:
        raise SpanFormatError(f"span [{index}]: parent id must be 8 bytes")


def _span(span: Any, index: int, little_endian_ids: bool) -> Span:
    _check_ids(span, index)

    def span_id(raw: bytes) -> str:
        return (raw[::-1] if little_endian_ids else raw).hex()

    return zipkin_span(
        trace_id=span.trace_id.hex().rjust(32, "0"),
        span_id=span_id(span.id),
        parent_id=span_id(span.parent_id) if span.parent_id else None,
        name=span.name,
        kind=_KIND_NAMES.get(span.kind, "internal"),
        start_us=span.timestamp,
        duration_us=span.duration,
        tags=dict(span.tags),
        endpoint_service=span.local_endpoint.service_name,
    )


def _parsed(body: bytes) -> Any:
    return parsed(ListOfSpans(), body, "a Zipkin ListOfSpans")


def count_spans(body: bytes) -> int:
    """How many spans BODY, a serialized ListOfSpans, holds, after checking what
    `spans` could refuse (the wire format, the id sizes) without reading them;
    SpanFormatError when it is not one."""
    spans = _parsed(body).spans
    for i, span in enumerate(spans):
        _check_ids(span, i)
    return len(spans)


def spans(body: bytes, *, little_endian_ids: bool = False) -> list[Span]:
    """BODY, a serialized ListOfSpans, as Spans, read as their Zipkin v2 JSON twins would
    be; SpanFormatError when it is not one. LITTLE_ENDIAN_IDS: span and parent ids as
    Envoy writes them."""
    return [_span(span, i, little_endian_ids) for i, span in enumerate(_parsed(body).spans)]
