"""A tiny instrumented FastAPI app for the telemetry tests."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry.instrument import instrument
from telemetry.logs import current_ids
from telemetry.metrics import HttpMetrics
from telemetry.settings import TelemetrySettings
from telemetry.tracing import Tracing, fastapi_kwargs

SETTINGS = TelemetrySettings(service_name="svc", service_version="v9", instance="svc-0")


def build_app(exporter: InMemorySpanExporter | None) -> tuple[FastAPI, HttpMetrics, Tracing]:
    app = FastAPI(**fastapi_kwargs())
    metrics = HttpMetrics("svc", "v9", "svc-0")
    tracing = Tracing(SETTINGS, span_exporter=exporter)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, object]:
        request_id, trace_id = current_ids()
        return {"item": item_id, "request_id": request_id, "trace_id": trace_id}

    @app.get("/boom")
    async def boom() -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=503)

    @app.get("/metrics")
    async def metrics_endpoint():  # noqa: ANN202
        return metrics.response()

    instrument(app, tracing=tracing, metrics=metrics)
    return app, metrics, tracing


@pytest.fixture(name="exporter")
def _exporter() -> InMemorySpanExporter:
    """Collects every span synchronously."""
    return InMemorySpanExporter()


@pytest.fixture(name="traced")
def _traced(exporter: InMemorySpanExporter) -> httpx.AsyncClient:
    app, _, _ = build_app(exporter)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
