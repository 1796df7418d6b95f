"""One span model for the two wire formats the local receiver takes.

- OTLP/HTTP protobuf (`POST /v1/traces`): what the services' OpenTelemetry SDK sends.
- Zipkin v2 (`POST /api/v2/spans`): what Envoy's Zipkin tracer sends (see
  mesh/translate/tracing.py for why Envoy uses Zipkin), as JSON or as protobuf
  (mesh/traces/zipkin_proto3.py); both end in one builder, `zipkin_span`.

Ids are lower-case hex: 32 digits for a trace (a 64-bit Zipkin id is left-padded, as the
B3 spec says), 16 for a span.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

#: The span tag Envoy's spans carry their Istio-style service name in.
SERVICE_TAG = "istio.canonical_service"
_HEX = re.compile(r"^[0-9a-f]+$")
M = TypeVar("M", bound=Message)
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


class SpanFormatError(ValueError):
    """A span payload that cannot be read; the message says what is wrong."""


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    #: "ok", "error" or "unset"
    status: str
    version: str | None = None
    instance: str | None = None
    #: "otlp" (an app) or "zipkin" (Envoy)
    source: str = "otlp"
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "duration_ms": round(self.duration_ms, 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        fields = {k: v for k, v in data.items() if k != "duration_ms"}
        return cls(**fields)


def normalize_trace_id(raw: str) -> str:
    """A 16- or 32-digit hex trace id as 32 lower-case digits; ValueError otherwise."""
    value = raw.strip().lower()
    if len(value) not in (16, 32) or not _HEX.match(value):
        raise ValueError(f"trace id {raw!r} is not 16 or 32 hex digits")
    return value.rjust(32, "0")


# --------------------------------------------------------------------------- OTLP


def _any_value(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which in ("array_value", "kvlist_value", "bytes_value"):
        return str(getattr(value, which)).strip()
    return str(getattr(value, which))


def _attrs(items: Any) -> dict[str, str]:
    return {kv.key: _any_value(kv.value) for kv in items}


def parsed(message: M, body: bytes, what: str) -> M:
    """MESSAGE (an empty protobuf message) read from BODY; SpanFormatError saying BODY is
    not WHAT when it cannot be."""
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise SpanFormatError(f"not {what}: {exc}") from None
    return message


def _otlp_request(body: bytes) -> ExportTraceServiceRequest:
    return parsed(ExportTraceServiceRequest(), body, "an OTLP ExportTraceServiceRequest")


def _check_otlp_ids(s: Any) -> None:
    if len(s.trace_id) != 16 or len(s.span_id) != 8:
        raise SpanFormatError(f"span {s.name!r}: trace or span id of a wrong size")


def count_otlp_spans(body: bytes) -> int:
    """How many spans BODY, an OTLP ExportTraceServiceRequest, holds, after checking what
    `spans_from_otlp` could refuse, without reading them; SpanFormatError when invalid."""
    count = 0
    for resource_spans in _otlp_request(body).resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                _check_otlp_ids(s)
                count += 1
    return count


def spans_from_otlp(body: bytes) -> list[Span]:
    """Decode an OTLP ExportTraceServiceRequest (protobuf); SpanFormatError when invalid."""
    out: list[Span] = []
    for resource_spans in _otlp_request(body).resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        service = resource.get("service.name", "unknown")
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                _check_otlp_ids(s)
                attributes = _attrs(s.attributes)
                status = {0: "unset", 1: "ok", 2: "error"}.get(s.status.code, "unset")
                out.append(
                    Span(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex() or None,
                        name=s.name,
                        service=service,
                        kind=_KINDS.get(s.kind, "internal"),
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        status=status,
                        version=resource.get("service.version"),
                        instance=resource.get("service.instance.id"),
                        source="otlp",
                        attributes=attributes,
                    )
                )
    return out


# --------------------------------------------------------------------------- Zipkin


def _subset(cluster: str) -> str | None:
    """`outbound|5000|v1|backend-service...` -> "v1" (the subset Envoy picked)."""
    parts = cluster.split("|")
    return parts[2] or None if len(parts) == 4 else None


def _zipkin_span(item: Any, index: int) -> Span:
    if not isinstance(item, dict):
        raise SpanFormatError(f"span [{index}] is not a JSON object")
    try:
        trace_id = normalize_trace_id(str(item["traceId"]))
        span_id = str(item["id"]).lower().rjust(16, "0")
        start_us = int(item.get("timestamp", 0))
        duration_us = int(item.get("duration", 0))
    except KeyError as exc:
        raise SpanFormatError(f"span [{index}] has no {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise SpanFormatError(f"span [{index}]: {exc}") from None
    tags = item.get("tags") or {}
    if not isinstance(tags, dict):
        raise SpanFormatError(f"span [{index}]: tags is not a JSON object")
    endpoint = item.get("localEndpoint") or {}
    parent = item.get("parentId")
    return zipkin_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=str(parent).lower().rjust(16, "0") if parent else None,
        name=str(item.get("name") or ""),
        kind=str(item.get("kind") or "internal").lower(),
        start_us=start_us,
        duration_us=duration_us,
        tags={str(k): str(v) for k, v in tags.items()},
        endpoint_service=endpoint.get("serviceName"),
    )


def zipkin_span(
    *,
    trace_id: str,
    span_id: str,
    parent_id: str | None,
    name: str,
    kind: str,
    start_us: int,
    duration_us: int,
    tags: dict[str, str],
    endpoint_service: str | None,
) -> Span:
    """A Zipkin span, read from JSON here or from protobuf (mesh/traces/zipkin_proto3.py),
    as a Span: ids as normalized hex, TAGS a fresh dict of strings (it becomes the
    Span's attributes)."""
    service = tags.get(SERVICE_TAG) or endpoint_service or "unknown"
    code = tags.get("http.status_code", "")
    error = "error" in tags or (code.isdigit() and int(code) >= 500)
    method, url = tags.get("http.method"), tags.get("http.url")
    if method and url:
        # Envoy names a span after the host (or the route's decorator): say what it did
        tags["envoy.operation"] = name
        name = f"{method} {urlsplit(url).path or '/'}"
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        service=service,
        kind=kind,
        start_ns=start_us * 1000,
        end_ns=(start_us + duration_us) * 1000,
        status="error" if error else "ok" if code else "unset",
        version=_subset(tags.get("upstream_cluster", "")),
        instance=tags.get("node_id"),
        source="zipkin",
        attributes=tags,
    )


def spans_from_zipkin(data: Any) -> list[Span]:
    """Decode a Zipkin v2 JSON span list; SpanFormatError when it is not one."""
    if not isinstance(data, list):
        raise SpanFormatError("a Zipkin v2 payload is a JSON list of spans")
    return [_zipkin_span(item, i) for i, item in enumerate(data)]
