"""The frontend: a page and a JSON API that pass through to the backend.

Every backend call goes through the one BackendClient, which forwards the
trace, request-id and canary headers; routing between v1 and v2 is the mesh's
business, never this code's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from frontend import mesh_events as events
from frontend.client import BackendClient, BackendReply
from frontend.errors import BackendFailure
from frontend.page import STATIC_PREFIX, load_assets, render_page
from frontend.settings import FrontendSettings
from telemetry.asgi import TemplatedRoute, scope_headers
from telemetry.errors import install_common_handlers
from telemetry.instrument import instrument
from telemetry.limits import BodyLimitMiddleware
from telemetry.logs import current_ids
from telemetry.metrics import HttpMetrics
from telemetry.tracing import Tracing, fastapi_kwargs

log = logging.getLogger("frontend")

TASKS = "/api/tasks"
TASK = "/api/tasks/{task_id}"


class InvalidTaskId(Exception):
    """A task id in the URL that is not a number."""


@dataclass
class FrontendState:
    settings: FrontendSettings
    client: BackendClient
    ready: bool = True


def _id_headers() -> dict[str, str]:
    """This request's ids as response headers, so the page can show what to look up."""
    request_id, trace_id = current_ids()
    ids = {"x-request-id": request_id, "x-trace-id": trace_id}
    return {key: value for key, value in ids.items() if value}


def _pass_through(reply: BackendReply) -> Response:
    """The backend's reply with `backend: {version, instance}` added (and as headers).

    The backend's JSON object is extended in place as bytes rather than encoded
    again: the client already parsed it (so it is valid), and re-encoding a task
    list costs more than the rest of the pass-through.
    """
    headers = {
        f"x-backend-{key}": value for key, value in reply.backend.items() if value is not None
    }
    headers.update(_id_headers())
    if reply.status == 204 or reply.data is None:
        return Response(status_code=reply.status, headers=headers)
    if isinstance(reply.data, dict) and "backend" not in reply.data:
        body = reply.body.rstrip()
        extra = json.dumps(reply.backend, separators=(",", ":")).encode()
        joiner = b',"backend":' if reply.data else b'"backend":'
        content = body[:-1] + joiner + extra + b"}"
    else:
        data = reply.data
        if isinstance(data, dict):
            data = {**data, "backend": reply.backend}
        content = json.dumps(data, separators=(",", ":")).encode()
    return Response(content, reply.status, headers, media_type="application/json")


def _failure_response(exc: BackendFailure) -> JSONResponse:
    request_id, trace_id = current_ids()
    log.warning(
        "backend call failed",
        extra={"cause": exc.cause, "status": exc.status, "detail": exc.message},
    )
    body = {**exc.to_json(), "request_id": request_id, "trace_id": trace_id}
    return JSONResponse(body, status_code=exc.status, headers=_id_headers())


def create_app(
    settings: FrontendSettings,
    *,
    span_exporter: SpanExporter | None = None,
    span_processor: SpanProcessor | None = None,
) -> FastAPI:
    """The frontend app for `settings`; extra span exporter (tests) or processor (benchmarks)."""
    telemetry = settings.telemetry_settings
    tracing = Tracing(telemetry, span_exporter=span_exporter, span_processor=span_processor)
    metrics = HttpMetrics("frontend", settings.version, settings.instance)
    client = BackendClient(
        settings.backend_url,
        timeout_s=settings.backend_timeout_s,
        pool_size=settings.backend_pool_size,
        tracing=tracing,
        registry=metrics.registry,
        version=settings.version,
    )
    state = FrontendState(settings=settings, client=client)
    identity = {"version": settings.version, "instance": settings.instance}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await client.start()
        log.info("frontend ready", extra={"backend_url": settings.backend_url})
        try:
            yield
        finally:
            state.ready = False
            await client.close()
            tracing.shutdown()

    app = FastAPI(
        title="taskmesh frontend",
        version=settings.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        **fastapi_kwargs(),
    )
    app.state.frontend = state
    app.state.tracing = tracing

    async def on_failure(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BackendFailure)
        return _failure_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            {"error": "validation_error", "message": message, "fields": fields}, 422
        )

    async def on_bad_id(_: Request, exc: Exception) -> JSONResponse:
        message = f"task_id: {exc} is not a task id (a positive integer)"
        return JSONResponse(
            {
                "error": "validation_error",
                "message": message,
                "fields": [{"field": "task_id", "message": "not an integer"}],
            },
            422,
        )

    app.add_exception_handler(InvalidTaskId, on_bad_id)
    app.add_exception_handler(BackendFailure, on_failure)
    app.add_exception_handler(RequestValidationError, on_validation)
    install_common_handlers(app, log)

    async def call(
        request: Request, method: str, path: str, route: str, body: bytes | None = None
    ) -> BackendReply:
        return await client.call(
            method, path, route=route, incoming=scope_headers(request.scope), body=body
        )

    def task_path(request: Request) -> str:
        raw = request.path_params["task_id"]
        if not raw.isdigit():
            raise InvalidTaskId(raw)
        return f"{TASKS}/{int(raw)}"

    # Plain Starlette endpoints: they take only the request, and skipping FastAPI's
    # dependency solving saves ~15 % of the frontend's CPU per pass-through call.

    async def page(request: Request) -> Response:
        reply: BackendReply | None = None
        problem: BackendFailure | None = None
        try:
            reply = await call(request, "GET", TASKS, TASKS)
        except BackendFailure as exc:
            problem = exc
            log.warning("page degraded", extra={"cause": exc.cause, "detail": exc.message})
        request_id, trace_id = current_ids()
        ok = reply is not None and reply.status == 200 and isinstance(reply.data, dict)
        if reply is not None and not ok:
            said = reply.data.get("message") if isinstance(reply.data, dict) else None
            problem = BackendFailure(
                "bad_reply",
                f"the backend answered {reply.status}" + (f": {said}" if said else ""),
                502,
                reply.status,
            )
        html = render_page(
            frontend=identity,
            data=reply.data if ok and reply is not None else None,
            backend=reply.backend if reply is not None else {},
            failure=problem,
            request_id=request_id,
            trace_id=trace_id,
            trace_view_url=settings.trace_view_url,
        )
        return HTMLResponse(html, status_code=problem.status if problem else 200)

    async def list_tasks(request: Request) -> Response:
        return _pass_through(await call(request, "GET", TASKS, TASKS))

    async def create_task(request: Request) -> Response:
        body = await request.body()
        return _pass_through(await call(request, "POST", TASKS, TASKS, body))

    async def get_task(request: Request) -> Response:
        return _pass_through(await call(request, "GET", task_path(request), TASK))

    async def update_task(request: Request) -> Response:
        path = task_path(request)
        body = await request.body()
        return _pass_through(await call(request, "PATCH", path, TASK, body))

    async def delete_task(request: Request) -> Response:
        return _pass_through(await call(request, "DELETE", task_path(request), TASK))

    async def headers(request: Request) -> Response:
        reply = await call(request, "GET", "/api/headers", "/api/headers")
        return JSONResponse(
            {
                "frontend": {**identity, "headers": dict(request.headers.items())},
                "backend": reply.data,
            },
            headers={f"x-backend-{k}": v for k, v in reply.backend.items() if v is not None},
        )

    async def mesh_events(request: Request) -> Response:
        after = request.query_params.get("after")
        return await events.mesh_events(client, settings.mesh_events_url, after)

    assets = load_assets()

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["name"])
        if asset is None:
            return JSONResponse(
                {"error": "not_found", "message": f"no static file {request.url.path}"}, 404
            )
        headers = {"etag": asset.etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, headers=headers, media_type=asset.media_type)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        # Not the backend's health: a frontend that cannot reach the backend still
        # serves a degraded page, and failing here would cascade an outage.
        if not client.started:
            return JSONResponse({"status": "starting"}, 503)
        if not state.ready:
            return JSONResponse({"status": "draining"}, 503)
        return JSONResponse({"status": "ready"})

    async def version(_: Request) -> Response:
        return JSONResponse({"service": "frontend", **identity})

    async def metrics_endpoint(_: Request) -> Response:
        return metrics.response()

    for path, endpoint, methods in (
        ("/", page, ["GET"]),
        (TASKS, list_tasks, ["GET"]),
        (TASKS, create_task, ["POST"]),
        (TASK, get_task, ["GET"]),
        (TASK, update_task, ["PATCH"]),
        (TASK, delete_task, ["DELETE"]),
        ("/api/headers", headers, ["GET"]),
        (events.PATH, mesh_events, ["GET"]),
        (STATIC_PREFIX + "/{name}", static, ["GET"]),
        ("/healthz", healthz, ["GET"]),
        ("/readyz", readyz, ["GET"]),
        ("/version", version, ["GET"]),
        ("/metrics", metrics_endpoint, ["GET"]),
    ):
        app.router.routes.append(
            TemplatedRoute(path, endpoint, methods=methods, include_in_schema=False)
        )

    app.add_middleware(BodyLimitMiddleware)
    instrument(
        app,
        tracing=tracing,
        metrics=metrics if settings.metrics_enabled else None,
        generate_request_id=True,
    )
    return app


__all__ = ["create_app"]
