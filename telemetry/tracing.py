"""Tracing: one server span per request, one client span per backend call.

Why hand-written: the contrib `opentelemetry-instrumentation-fastapi` makes
three spans per request and cut a FastAPI endpoint to 0.30x of its throughput
on this machine; this one-span pure-ASGI middleware keeps about 0.65x
(reference/perf-baseline.md). When no exporter is configured (the default),
no tracer provider is built and no middleware is added: the services still
forward the incoming trace headers untouched, so the mesh's own trace
(Envoy's spans) stays whole at no cost to the app.

The provider is per app, not the global one: FastAPI >= 0.165 switches on its
own spans when a global provider exists (we turn that off as well, see
`fastapi_kwargs`), and tests can build several apps in one process.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

from telemetry.asgi import StatusRecorder, route_template, scope_headers
from telemetry.settings import TelemetrySettings


def fastapi_kwargs() -> dict[str, Any]:
    """Keyword arguments that switch FastAPI's built-in telemetry off where it exists."""
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def make_propagator() -> CompositePropagator:
    """B3 (single and multi header, read; multi written) and W3C tracecontext.

    W3C comes last so that, when a request carries both, `traceparent` wins.
    """
    return CompositePropagator([B3MultiFormat(), TraceContextTextMapPropagator()])


def tune_gc() -> None:
    """Freeze the start-up heap and raise the gen-0 threshold; telemetry.serve calls it in
    both services' server processes once the app has started.

    With spans recorded, a loaded service runs ~150 gen-0 collections a second;
    this cut p99 latency 2-3x here (perf-baseline.md section 2). Without an exporter
    the frontend still made ~40 gen-0 collections a second and a full one (tens of ms,
    over the whole start-up heap) every ~5 s under wrk -c32 (issue 16); with this, none
    while loaded.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class Tracing:
    """A service's tracer, or nothing at all when no exporter is configured.

    `span_exporter` adds an exporter that gets every span synchronously (tests
    pass an InMemorySpanExporter here); `span_processor` adds a processor as it
    is (benchmarks pass a BatchSpanProcessor over a counting exporter).
    """

    def __init__(
        self,
        settings: TelemetrySettings,
        span_exporter: SpanExporter | None = None,
        span_processor: SpanProcessor | None = None,
    ):
        self.propagator = make_propagator()
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        processors: list[Any] = []
        for name in settings.traces_exporters:
            processors.append(BatchSpanProcessor(_exporter(name, settings)))
        #: Spans leave the process (through a batch processor or the one given).
        self.exports = bool(processors) or span_processor is not None
        if span_exporter is not None:
            processors.append(SimpleSpanProcessor(span_exporter))
        if span_processor is not None:
            processors.append(span_processor)
        if not processors:
            return
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": settings.service_version,
                "service.instance.id": settings.instance,
            }
        )
        self.provider = TracerProvider(resource=resource)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("taskmesh", settings.service_version)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap `app` with the server-span middleware, or return it unchanged when disabled."""
        if self.tracer is None:
            return app
        return ServerSpanMiddleware(app, self.tracer, self.propagator)

    @contextlib.contextmanager
    def client_span(self, method: str, url: str) -> Iterator[Span | None]:
        """A CLIENT span around one outgoing call (None when tracing is off)."""
        if self.tracer is None:
            yield None
            return
        with self.tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.full": url},
        ) as span:
            yield span

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Write the current span context into `headers` (no-op when tracing is off)."""
        if self.tracer is not None:
            self.propagator.inject(headers)

    def shutdown(self) -> None:
        """Flush and stop the exporters."""
        if self.provider is not None:
            self.provider.shutdown()


def _exporter(name: str, settings: TelemetrySettings) -> SpanExporter:
    if name == "console":
        # sys.stdout now, not the one bound as a default argument at import time.
        return ConsoleSpanExporter(service_name=settings.service_name, out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)


class ServerSpanMiddleware:
    """Pure-ASGI middleware: one SERVER span per HTTP request, parented on the caller's context."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, propagator: CompositePropagator):
        self.app = app
        self.tracer = tracer
        self.propagator = propagator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = self.propagator.extract(scope_headers(scope))
        method = scope["method"]
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        sent = StatusRecorder(send)
        try:
            await self.app(scope, receive, sent)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            route = route_template(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", sent.status)
            if sent.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
