"""Wire the telemetry middlewares onto an app in the one order that works.

Outermost first: the server span (so everything inside runs in its context),
then the request-context variables for logs (which read that span's trace id),
then the metrics timer, then the app.
"""

from __future__ import annotations

from fastapi import FastAPI

from telemetry.logs import RequestContextMiddleware
from telemetry.metrics import HttpMetrics, MetricsMiddleware
from telemetry.tracing import ServerSpanMiddleware, Tracing


def instrument(
    app: FastAPI,
    *,
    tracing: Tracing,
    metrics: HttpMetrics | None,
    generate_request_id: bool = False,
) -> None:
    """Add the middlewares; `metrics=None` leaves request metrics out (benchmarks only)."""
    # add_middleware puts each new middleware outside the ones added before it.
    if metrics is not None:
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        RequestContextMiddleware,
        generate_request_id=generate_request_id,
        spans=tracing.tracer is not None,
    )
    if tracing.tracer is not None:
        app.add_middleware(
            ServerSpanMiddleware, tracer=tracing.tracer, propagator=tracing.propagator
        )
