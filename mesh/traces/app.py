"""The receiver's HTTP app: span intake (OTLP and Zipkin) and a JSON + HTML read side.

POST /v1/traces          OTLP/HTTP protobuf (the services)
POST /api/v2/spans       Zipkin v2, protobuf (Envoy: ?span_ids=little-endian) or JSON
GET  /api/traces?limit=N recent traces, newest first (summaries); &probes=1 adds
                         traces of nothing but probes and scrapes
GET  /api/traces/{id}    one trace's spans
GET  /  and /traces/{id} the same for a browser
GET  /healthz            status, traces kept, spans dropped
"""

from __future__ import annotations

import gzip
import json
import zlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mesh.traces import render, zipkin_proto3
from mesh.traces.model import (
    SpanFormatError,
    count_otlp_spans,
    normalize_trace_id,
    spans_from_otlp,
    spans_from_zipkin,
)
from mesh.traces.store import TraceStore, summary

MAX_BODY = 8 * 1024 * 1024
DEFAULT_LIMIT = 20
PROTOBUF = "application/x-protobuf"
#: how a protobuf body's span ids are ordered (mesh/traces/zipkin_proto3.py: Envoy's)
SPAN_ID_ORDERS = ("big-endian", "little-endian")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status)


async def _body(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise SpanFormatError(f"body of {len(raw)} bytes is over the {MAX_BODY} byte limit")
    encoding = request.headers.get("content-encoding", "identity").lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, zlib.error, EOFError) as exc:
        raise SpanFormatError(f"body is not valid {encoding}: {exc}") from None
    if encoding != "identity":
        raise SpanFormatError(f"content-encoding {encoding!r} is not supported")
    return raw


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise SpanFormatError(f"limit: {raw!r} is not a number from 1 to 10000")
    return int(raw)


def create_app(store: TraceStore) -> Starlette:
    async def otlp(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind != PROTOBUF:
            return _error(415, "unsupported_media_type", f"send OTLP as {PROTOBUF}, not {kind!r}")
        try:
            body = await _body(request)
            store.defer(count_otlp_spans(body), lambda: spans_from_otlp(body))
        except SpanFormatError as exc:
            return _error(400, "bad_spans", str(exc))
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    async def zipkin(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        order = request.query_params.get("span_ids", "big-endian")
        if order not in SPAN_ID_ORDERS:
            return _error(
                400, "bad_span_ids", f"span_ids: {order!r} is not one of {SPAN_ID_ORDERS}"
            )
        try:
            body = await _body(request)
            if kind == PROTOBUF:
                # checked now, read when the store is (mesh/traces/store.py says why)
                little = order == "little-endian"
                store.defer(
                    zipkin_proto3.count_spans(body),
                    lambda: zipkin_proto3.spans(body, little_endian_ids=little),
                )
            else:
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise SpanFormatError(f"body is not JSON: {exc}") from None
                store.add(spans_from_zipkin(data))
        except SpanFormatError as exc:
            return _error(400, "bad_spans", str(exc))
        return Response(status_code=202)

    def _trace(request: Request) -> tuple[str, list] | Response:
        raw = request.path_params["trace_id"]
        try:
            trace_id = normalize_trace_id(raw)
        except ValueError as exc:
            return _error(400, "bad_trace_id", str(exc))
        spans = store.get(trace_id)
        if spans is None:
            return _error(
                404, "not_found", f"no trace {trace_id} (kept: the last {store.max_traces} traces)"
            )
        return trace_id, spans

    async def list_json(request: Request) -> Response:
        try:
            limit = _limit(request)
        except SpanFormatError as exc:
            return _error(400, "bad_limit", str(exc))
        probes = request.query_params.get("probes", "0") == "1"
        recent = store.recent(limit, probes=probes)
        return JSONResponse({"traces": [summary(t, s) for t, s in recent]})

    async def trace_json(request: Request) -> Response:
        found = _trace(request)
        if isinstance(found, Response):
            return found
        trace_id, spans = found
        return JSONResponse({"trace_id": trace_id, "spans": [s.to_json() for s in spans]})

    async def index_html(request: Request) -> Response:
        try:
            limit = _limit(request)
        except SpanFormatError as exc:
            return _error(400, "bad_limit", str(exc))
        return HTMLResponse(render.html_index([summary(t, s) for t, s in store.recent(limit)]))

    async def trace_html(request: Request) -> Response:
        found = _trace(request)
        if isinstance(found, Response):
            return found
        return HTMLResponse(render.html_trace(*found))

    async def healthz(_: Request) -> Response:
        # spans let go: over a trace's cap, or waiting unread past the store's (store.py)
        return JSONResponse(
            {"status": "ok", "traces": len(store), "dropped_spans": store.dropped_spans}
        )

    return Starlette(
        routes=[
            Route("/v1/traces", otlp, methods=["POST"]),
            Route("/api/v2/spans", zipkin, methods=["POST"]),
            Route("/api/traces", list_json, methods=["GET"]),
            Route("/api/traces/{trace_id}", trace_json, methods=["GET"]),
            Route("/", index_html, methods=["GET"]),
            Route("/traces/{trace_id}", trace_html, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
