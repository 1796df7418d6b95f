"""What the platform asks the backend: liveness (/healthz), readiness (/readyz: the store
answers and the process is not draining), its identity (/version) and its metrics.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from backend.state import BackendState
from telemetry.metrics import HttpMetrics


def add_probe_routes(
    app: FastAPI, state: BackendState, metrics: HttpMetrics, doc: dict[str, dict[str, Any]]
) -> None:
    """The probes, /version and /metrics on APP; DOC: each route's OpenAPI."""
    settings = state.settings

    @app.get("/healthz", **doc["GET /healthz"])
    async def healthz() -> JSONResponse:
        # the livenessProbe: failing it gets this process killed and restarted
        if not state.live:
            return JSONResponse({"status": "failing liveness (PUT /admin/live)"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", **doc["GET /readyz"])
    async def readyz() -> JSONResponse:
        if not state.started:
            return JSONResponse({"status": "starting"}, status_code=503)
        if not state.ready:
            return JSONResponse({"status": "draining"}, status_code=503)
        try:
            await state.store.ping()
        except Exception as exc:  # any store failure means "do not send me traffic"
            body = {"status": "store unavailable", "cause": "store_unavailable", "reason": str(exc)}
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/version", **doc["GET /version"])
    async def version() -> JSONResponse:
        return JSONResponse(
            {"service": "backend", "version": settings.version, "instance": settings.instance}
        )

    @app.get("/metrics", **doc["GET /metrics"])
    async def metrics_endpoint() -> Response:
        return metrics.response()
