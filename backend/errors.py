"""Every error the backend sends is JSON: `{"error": code, "message": text, ...}`.

Validation errors name the field (`title: ...`), so a user reading a 422 in a
terminal knows what to fix without the docs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from backend.stores import StoreUnavailable
from telemetry.errors import error_body, install_common_handlers

__all__ = [
    "ApiError",
    "ValidationFailed",
    "describe",
    "error_body",
    "install_error_handlers",
    "validation_response",
]

log = logging.getLogger("backend")

_PREFIXES = ("body", "path", "query", "header")


class ApiError(Exception):
    """An error reply decided by a handler: status, code and message."""

    def __init__(self, status: int, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


class ValidationFailed(Exception):
    """A body a handler parsed and refused, with the reply already rendered
    (validation_response)."""

    def __init__(self, response: JSONResponse):
        self.response = response


def describe(errors: Iterable[Mapping[str, Any]], version: str = "") -> list[dict[str, str]]:
    """pydantic errors as [{"field": "title", "message": "..."}]."""
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in _PREFIXES and len(loc) > 1:
            loc = loc[1:]
        field = ".".join(loc) or "body"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            message = "unknown field"
            if field == "priority" and version == "v1":
                message += " (backend v1 has no priority; send x-canary: true for v2)"
        elif kind == "missing":
            message = "required"
        else:
            message = str(err.get("msg", "invalid"))
        out.append({"field": field, "message": message})
    return out


def validation_response(errors: list[Mapping[str, Any]], version: str = "") -> JSONResponse:
    """422 naming each bad field, or 400 for a body that is not JSON at all."""
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "") if isinstance(err.get("ctx"), dict) else ""
            message = "body: malformed JSON" + (f" ({detail})" if detail else "")
            return JSONResponse(error_body("malformed_json", message), status_code=400)
    fields = describe(errors, version)
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(error_body("validation_error", message, fields=fields), status_code=422)


def install_error_handlers(app: FastAPI, version: str = "") -> None:
    """JSON for validation errors, HTTP errors (404/405), ApiError and anything unexpected;
    a 503 with retry-after while the task store is unavailable."""

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(list(exc.errors()), version)

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(error_body(exc.error, exc.message, **exc.extra), status_code=exc.status)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ApiError, on_api_error)
    install_common_handlers(app, log)

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
        assert isinstance(exc, ValidationFailed)
        return exc.response

    app.add_exception_handler(ValidationFailed, on_validation_failed)
