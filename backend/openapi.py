"""What the backend's OpenAPI schema says about each route: bodies and every reply.

The handlers read their bodies themselves (one parse, errors named per field), so
FastAPI cannot infer the request bodies or the replies; they are declared here, and
schemathesis (tests/robustness) checks the running service against them: every status
a route can answer is listed, and a body the schema allows is one the service accepts.
"""

from __future__ import annotations

from typing import Any

from backend.fault import DELAY_CAP_MS

JSON = "application/json"
_STR = {"type": "string"}
# strip_whitespace, then 1-200 characters: at least one that is not a space
TITLE = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^\s*\S[\s\S]*$"}
PRIORITY = {"type": "string", "enum": ["low", "normal", "high"]}
ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": _STR, "message": _STR},
}
FAULT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"type": "integer", "minimum": 500, "maximum": 599},
        "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "delay_ms": {"type": "integer", "minimum": 0, "maximum": DELAY_CAP_MS},
        "delay_rate": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
READY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ready"],
    "properties": {"ready": {"type": "boolean"}},
}
LIVE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["live"],
    "properties": {"live": {"type": "boolean"}},
}


def _task(v2: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "integer"},
        "title": _STR,
        "done": {"type": "boolean"},
        "created_at": _STR,
        "updated_at": _STR,
    }
    if v2:
        props["priority"] = PRIORITY
    return {"type": "object", "required": list(props), "properties": props}


def _reply(schema: dict[str, Any] | None, description: str, media: str = JSON) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    names = {
        400: "malformed JSON or a bad Idempotency-Key",
        404: "no such task",
        409: "a request with this Idempotency-Key is still in progress",
        413: "body larger than the limit",
        422: "a field is invalid (the message names it)",
        503: "not ready (or draining), failing liveness on purpose, or the task store is"
        ' unavailable ("cause": "store_unavailable")',
    }
    return {code: _reply(ERROR, names[code]) for code in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def routes(v2: bool) -> dict[str, dict[str, Any]]:
    """`METHOD PATH` -> keyword arguments for FastAPI's route decorator."""
    task = _task(v2)
    create: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title"],
        "properties": {"title": TITLE, **({"priority": PRIORITY} if v2 else {})},
    }
    patch: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "title": TITLE,
            "done": {"type": "boolean"},
            **({"priority": PRIORITY} if v2 else {}),
        },
    }
    listing = {
        "type": "object",
        "required": ["version", "instance", "tasks"],
        "properties": {
            "version": _STR,
            "instance": _STR,
            "tasks": {"type": "array", "items": task},
        },
    }
    fault_view = {"type": "object", "required": list(FAULT["properties"]) + ["active"]}
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[ -~]+$"},
    }
    return {
        "GET /api/tasks": {"responses": {200: _reply(listing, "every task"), **_errors(503)}},
        "GET /api/tasks/{task_id}": {
            "responses": {200: _reply(task, "the task"), **_errors(404, 422, 503)}
        },
        "POST /api/tasks": {
            "openapi_extra": {**_body(create), "parameters": [key]},
            "responses": {
                201: _reply(task, "created (or replayed)"),
                **_errors(400, 409, 413, 422, 503),
            },
        },
        "PATCH /api/tasks/{task_id}": {
            "openapi_extra": _body(patch),
            "responses": {200: _reply(task, "changed"), **_errors(400, 404, 413, 422, 503)},
        },
        "DELETE /api/tasks/{task_id}": {
            "responses": {204: _reply(None, "deleted"), **_errors(404, 422, 503)}
        },
        "GET /api/headers": {"responses": {200: _reply({"type": "object"}, "headers received")}},
        "GET /healthz": {"responses": {200: _reply({"type": "object"}, "alive"), **_errors(503)}},
        "GET /readyz": {"responses": {200: _reply({"type": "object"}, "ready"), **_errors(503)}},
        "GET /version": {"responses": {200: _reply({"type": "object"}, "version")}},
        "GET /metrics": {
            "responses": {200: _reply(_STR, "Prometheus text", "text/plain")},
        },
        "GET /admin/fault": {"responses": {200: _reply(fault_view, "the fault toggle")}},
        "PUT /admin/fault": {
            "openapi_extra": _body(FAULT),
            "responses": {200: _reply(fault_view, "set"), **_errors(400, 413, 422)},
        },
        "DELETE /admin/fault": {"responses": {200: _reply(fault_view, "cleared")}},
        "GET /admin/ready": {"responses": {200: _reply(READY, "readiness")}},
        "PUT /admin/ready": {
            "openapi_extra": _body(READY),
            "responses": {200: _reply(READY, "set"), **_errors(400, 413, 422)},
        },
        "GET /admin/live": {"responses": {200: _reply(LIVE, "liveness")}},
        "PUT /admin/live": {
            "openapi_extra": _body(LIVE),
            "responses": {200: _reply(LIVE, "set"), **_errors(400, 413, 422)},
        },
    }
