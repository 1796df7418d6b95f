"""The tasks API: list, read, create (idempotent with an Idempotency-Key), change and
delete tasks, and /api/headers, which echoes what reached the backend.

v2 shows and sorts by `priority`; v1 has none. The rendered list is kept until the
store says something changed, so a GET under load renders once per write.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from backend.bodies import (
    MAX_IDEMPOTENCY_KEY,
    TaskCreateV1,
    TaskCreateV2,
    TaskId,
    TaskPatchV1,
    TaskPatchV2,
    parse_body,
)
from backend.errors import ApiError
from backend.state import BackendState
from backend.store import IdempotencyConflict, Task, request_fingerprint
from backend.stores import IdempotencyInFlight


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


def add_task_routes(app: FastAPI, state: BackendState, doc: dict[str, dict[str, Any]]) -> None:
    """The tasks API of STATE's version on APP; DOC: each route's OpenAPI (backend/openapi.py)."""
    settings = state.settings
    v2 = settings.shows_priority
    create_model: type[TaskCreateV1] = TaskCreateV2 if v2 else TaskCreateV1
    patch_model: type[TaskPatchV1] = TaskPatchV2 if v2 else TaskPatchV1

    def view(task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {"id": task.id, "title": task.title, "done": task.done}
        if v2:
            out["priority"] = task.priority
        out["created_at"] = task.created_at
        out["updated_at"] = task.updated_at
        return out

    def not_found(task_id: int) -> ApiError:
        return ApiError(404, "not_found", f"task {task_id} not found")

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
