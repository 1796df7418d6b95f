"""The backend: a tasks API whose version (v1 or v2) comes from configuration.

`create_app(settings)` builds everything; nothing runs at import. The store is
opened in the lifespan, so `/readyz` is 200 only once it is usable.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import openapi
from backend.errors import ApiError, error_body, install_error_handlers, validation_response
from backend.fault import FaultMiddleware, FaultSpec, FaultState
from backend.settings import BackendSettings
from backend.store import IdempotencyConflict, Task, request_fingerprint
from backend.stores import IdempotencyInFlight, Store, StoreUnavailable, open_store
from telemetry.instrument import instrument
from telemetry.limits import BodyLimitMiddleware
from telemetry.metrics import HttpMetrics
from telemetry.tracing import Tracing, fastapi_kwargs

log = logging.getLogger("backend")

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Priority = Literal["low", "normal", "high"]
MAX_IDEMPOTENCY_KEY = 255
# SQLite's INTEGER: a larger id in the path is a 422, never an OverflowError (500)
TaskId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


class TaskCreateV1(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title


class TaskCreateV2(TaskCreateV1):
    priority: Priority = "normal"


class TaskPatchV1(BaseModel):
    """Only the fields sent are changed; an explicit null is refused."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    done: StrictBool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class TaskPatchV2(TaskPatchV1):
    priority: Priority | None = None


class ReadyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: StrictBool


class LiveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    live: StrictBool


@dataclass
class BackendState:
    settings: BackendSettings
    store: Store
    fault: FaultState
    ready: bool = True
    live: bool = True  # False: /healthz fails, so the kubelet restarts this process
    started: bool = False


class ListingCache:
    """The last rendered GET /api/tasks body and the store stamp it was read under."""

    __slots__ = ("stamp", "body")

    def __init__(self) -> None:
        self.stamp: object | None = None
        self.body = b""

    def get(self, stamp: object | None) -> bytes | None:
        return self.body if stamp is not None and stamp == self.stamp else None

    def put(self, stamp: object | None, body: bytes) -> bytes:
        self.stamp, self.body = stamp, body
        return body


class IdentityHeadersMiddleware:
    """Pure-ASGI: every response says which version and instance produced it."""

    def __init__(self, app: ASGIApp, version: str, instance: str):
        self.app = app
        self.headers = [
            (b"x-backend-version", version.encode()),
            (b"x-backend-instance", instance.encode("latin-1", "replace")),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_identity(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_identity)


def parse_body(model: type[BaseModel], raw: bytes, version: str) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise _ValidationFailed(validation_response(list(exc.errors()), version)) from None


class _ValidationFailed(Exception):
    def __init__(self, response: JSONResponse):
        self.response = response


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
    v2 = settings.shows_priority
    create_model: type[TaskCreateV1] = TaskCreateV2 if v2 else TaskCreateV1
    patch_model: type[TaskPatchV1] = TaskPatchV2 if v2 else TaskPatchV1
    doc = openapi.routes(v2)  # what each route accepts and answers, for the schema

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

    async def on_store_unavailable(_: Request, exc: Exception) -> Response:
        log.warning("store unavailable", extra={"reason": str(exc)})
        return JSONResponse(
            error_body(
                "store_unavailable", f"the task store is unavailable: {exc}",
                cause="store_unavailable",
            ),
            status_code=503,
            headers={"retry-after": "1"},
        )  # fmt: skip

    app.add_exception_handler(StoreUnavailable, on_store_unavailable)

    async def on_validation_failed(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ValidationFailed)
        return exc.response

    app.add_exception_handler(_ValidationFailed, on_validation_failed)

    def view(task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {"id": task.id, "title": task.title, "done": task.done}
        if v2:
            out["priority"] = task.priority
        out["created_at"] = task.created_at
        out["updated_at"] = task.updated_at
        return out

    def not_found(task_id: int) -> ApiError:
        return ApiError(404, "not_found", f"task {task_id} not found")

    # -- tasks -------------------------------------------------------------

    listing = ListingCache()

    @app.get("/api/tasks", **doc["GET /api/tasks"])
    async def list_tasks() -> Response:
        # SQLite: the rendered list is reused until any process commits (TaskStore.read_stamp);
        # PostgreSQL gives no stamp, so every GET reads (backend.stores).
        stamp = state.store.read_stamp()
        body = listing.get(stamp)
        if body is None:
            tasks = await state.store.list_tasks(by_priority=v2)
            rendered = JSONResponse(
                {
                    "version": settings.version,
                    "instance": settings.instance,
                    "tasks": [view(t) for t in tasks],
                }
            )
            body = listing.put(stamp, bytes(rendered.body))
        return Response(body, media_type=JSONResponse.media_type)

    @app.get("/api/tasks/{task_id}", **doc["GET /api/tasks/{task_id}"])
    async def get_task(task_id: TaskId) -> JSONResponse:
        task = await state.store.get(task_id)
        if task is None:
            raise not_found(task_id)
        return JSONResponse(view(task))

    @app.post("/api/tasks", status_code=201, **doc["POST /api/tasks"])
    async def create_task(request: Request) -> JSONResponse:
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
            raise ApiError(
                400,
                "bad_idempotency_key",
                f"Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            )
        body = parse_body(create_model, raw, settings.version)
        assert isinstance(body, TaskCreateV1)
        priority = getattr(body, "priority", None)

        def render(task: Task) -> tuple[int, dict[str, Any]]:
            return 201, view(task)

        try:
            task, replay = await state.store.create(
                body.title,
                priority,
                idempotency_key=key,
                fingerprint=request_fingerprint("POST", "/api/tasks", raw),
                render=render,
            )
        except IdempotencyConflict:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "Idempotency-Key: already used for a different request body",
            ) from None
        except IdempotencyInFlight:
            raise ApiError(
                409,
                "idempotency_key_in_flight",
                "Idempotency-Key: a request with this key is still in progress; retry shortly",
            ) from None
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status, headers={"idempotent-replayed": "true"}
            )
        assert task is not None
        return JSONResponse(view(task), status_code=201)

    @app.patch("/api/tasks/{task_id}", **doc["PATCH /api/tasks/{task_id}"])
    async def update_task(task_id: TaskId, request: Request) -> JSONResponse:
        body = parse_body(patch_model, await request.body(), settings.version)
        changes = body.model_dump(exclude_unset=True)
        if not changes:
            fields = "title, done" + (", priority" if v2 else "")
            raise ApiError(422, "validation_error", f"body: send at least one of {fields}")
        task = await state.store.update(task_id, changes)
        if task is None:
            raise not_found(task_id)
        return JSONResponse(view(task))

    @app.delete("/api/tasks/{task_id}", status_code=204, **doc["DELETE /api/tasks/{task_id}"])
    async def delete_task(task_id: TaskId) -> Response:
        if not await state.store.delete(task_id):
            raise not_found(task_id)
        return Response(status_code=204)

    @app.get("/api/headers", **doc["GET /api/headers"])
    async def headers(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "version": settings.version,
                "instance": settings.instance,
                "headers": dict(request.headers.items()),
            }
        )

    # -- probes and identity -------------------------------------------------

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

    # -- admin: fault toggle and readiness -----------------------------------

    @app.get("/admin/fault", **doc["GET /admin/fault"])
    async def get_fault() -> JSONResponse:
        return JSONResponse(state.fault.view())

    @app.put("/admin/fault", **doc["PUT /admin/fault"])
    async def put_fault(request: Request) -> JSONResponse:
        spec = parse_body(FaultSpec, await request.body(), settings.version)
        assert isinstance(spec, FaultSpec)
        state.fault.spec = spec
        log.warning("fault set", extra={"fault": spec.model_dump()})
        return JSONResponse(state.fault.view())

    @app.delete("/admin/fault", **doc["DELETE /admin/fault"])
    async def clear_fault() -> JSONResponse:
        state.fault.spec = FaultSpec()
        log.info("fault cleared")
        return JSONResponse(state.fault.view())

    @app.get("/admin/ready", **doc["GET /admin/ready"])
    async def get_ready() -> JSONResponse:
        return JSONResponse({"ready": state.ready})

    @app.put("/admin/ready", **doc["PUT /admin/ready"])
    async def put_ready(request: Request) -> JSONResponse:
        body = parse_body(ReadyBody, await request.body(), settings.version)
        assert isinstance(body, ReadyBody)
        state.ready = body.ready
        log.warning("readiness set", extra={"ready": body.ready})
        return JSONResponse({"ready": state.ready})

    @app.get("/admin/live", **doc["GET /admin/live"])
    async def get_live() -> JSONResponse:
        return JSONResponse({"live": state.live})

    @app.put("/admin/live", **doc["PUT /admin/live"])
    async def put_live(request: Request) -> JSONResponse:
        body = parse_body(LiveBody, await request.body(), settings.version)
        assert isinstance(body, LiveBody)
        state.live = body.live
        log.warning("liveness set", extra={"live": body.live})
        return JSONResponse({"live": state.live})

    # Innermost first: fault, body limit, identity headers; then telemetry outside.
    app.add_middleware(FaultMiddleware, state=fault, router=app.router)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(
        IdentityHeadersMiddleware, version=settings.version, instance=settings.instance
    )
    instrument(app, tracing=tracing, metrics=metrics if settings.metrics_enabled else None)
    return app
