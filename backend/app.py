"""The backend: a tasks API whose version (v1 or v2) comes from configuration.

`create_app(settings)` builds everything; nothing runs at import. The store is
opened in the lifespan, so `/readyz` is 200 only once it is usable.

This module assembles the app; the routes are backend/task_routes.py,
backend/probe_routes.py and backend/admin_routes.py, the error replies
backend/errors.py, the request bodies backend/bodies.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from backend import openapi
from backend.admin_routes import add_admin_routes
from backend.errors import install_error_handlers
from backend.fault import FaultMiddleware, FaultState
from backend.identity import IdentityHeadersMiddleware
from backend.probe_routes import add_probe_routes
from backend.settings import BackendSettings
from backend.state import BackendState
from backend.stores import open_store
from backend.task_routes import add_task_routes
from telemetry.instrument import instrument
from telemetry.limits import BodyLimitMiddleware
from telemetry.metrics import HttpMetrics
from telemetry.tracing import Tracing, fastapi_kwargs

log = logging.getLogger("backend")


def create_app(
    settings: BackendSettings,
    *,
    span_exporter: SpanExporter | None = None,
    span_processor: SpanProcessor | None = None,
) -> FastAPI:
    """The backend app for `settings`; extra span exporter (tests) or processor (benchmarks)."""
    telemetry = settings.telemetry_settings
    tracing = Tracing(telemetry, span_exporter=span_exporter, span_processor=span_processor)
    metrics = HttpMetrics("backend", settings.version, settings.instance)
    fault = FaultState(spec=settings.fault)
    fault.register(metrics.registry, settings.version)
    store = open_store(settings.tasks_db, instance=settings.instance)
    state = BackendState(settings=settings, store=store, fault=fault)
    doc = openapi.routes(settings.shows_priority)  # what each route accepts and answers

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.store.open(seed=settings.seed_tasks)
        state.started = True
        log.info(
            "backend ready",
            extra={"db": state.store.description, "fault": settings.fault.model_dump()},
        )
        try:
            yield
        finally:
            state.ready = False
            tracing.shutdown()
            await state.store.close()

    app = FastAPI(
        title="taskmesh backend",
        version=settings.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        **fastapi_kwargs(),
    )
    app.state.backend = state
    app.state.tracing = tracing
    install_error_handlers(app, settings.version)
    add_task_routes(app, state, doc)
    add_probe_routes(app, state, metrics, doc)
    add_admin_routes(app, state, doc)

    # Innermost first: fault, body limit, identity headers; then telemetry outside.
    app.add_middleware(FaultMiddleware, state=fault, router=app.router)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(
        IdentityHeadersMiddleware, version=settings.version, instance=settings.instance
    )
    instrument(app, tracing=tracing, metrics=metrics if settings.metrics_enabled else None)
    return app
