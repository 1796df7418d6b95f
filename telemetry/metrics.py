"""Prometheus metrics: a per-app registry and a pure-ASGI request middleware.

Per app, not the process-global registry, so that tests can build several apps
in one process and each `/metrics` shows only its own service. As a pure-ASGI
middleware a histogram costs ~2 % of throughput; through `@app.middleware("http")`
it cost 60 % here (reference/perf-baseline.md).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from telemetry.asgi import StatusRecorder, route_template

REQUEST_LABELS = ("route", "method", "status", "version")
#: Latency buckets in seconds, from sub-millisecond (in-process) to the mesh's 5 s route timeout.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class HttpMetrics:
    """The metrics every service exposes; services add their own on `registry`."""

    def __init__(self, service: str, version: str, instance: str):
        self.version = version
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_server_requests",
            "HTTP requests served, by route template, method, status and version.",
            REQUEST_LABELS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Time to serve an HTTP request, by route template, method, status and version.",
            REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        build = Info("taskmesh_build", "The running service and version.", registry=self.registry)
        build.info({"service": service, "version": version, "instance": instance})
        # labels() looks the child up under a lock; a dict of children is cheaper per request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status), self.version)
            children = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        return MetricsMiddleware(app, self)

    def response(self) -> Response:
        """The Prometheus text exposition of this app's registry."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Pure-ASGI middleware recording one count and one latency sample per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = StatusRecorder(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            self.metrics.observe(
                route_template(scope),
                scope["method"],
                sent.status,
                time.perf_counter() - start,
            )
