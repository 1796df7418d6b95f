"""JSON error replies both services send the same way: `{"error": code, "message": text}`.

404 and 405 from routing (a 405 names every method of the path in Allow) and anything
unexpected (a 500 naming only the exception type; the traceback goes to the log).
Validation errors differ per service and stay with each app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from telemetry.asgi import allowed_methods

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTPException (unknown route, wrong method...) as JSON."""
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # one Allow header: Starlette's names only the first route's methods ("Allow")
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        headers["allow"] = allowed_methods(request.app.router.routes, request.scope)
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
    )


def on_unexpected_error(
    log: logging.Logger,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler for any other exception: logged to LOG with its traceback, a JSON 500."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body("internal_error", f"internal error: {type(exc).__name__}"),
            status_code=500,
        )

    return handler


def install_common_handlers(app: FastAPI, log: logging.Logger) -> None:
    """HTTPException and unexpected exceptions as JSON (see the module doc)."""
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error(log))
