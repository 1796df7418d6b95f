"""JSON logs to stdout, one object a line, each with the request id and trace id.

`configure_logging` is called once by a service's `main()`, never at import.
`RequestContextMiddleware` puts the ids of the request being served into
context variables that the formatter reads.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import IO, Any

from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from telemetry.asgi import StatusRecorder, scope_headers
from telemetry.propagation import trace_id_from_headers

access_log = logging.getLogger("taskmesh.access")
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)

_STD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; extra attributes become fields."""

    def __init__(self, service: str = "", version: str = "", instance: str = ""):
        super().__init__()
        self.static = {"service": service, "version": version, "instance": instance}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
            "request_id": request_id_var.get(),
            "trace_id": trace_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    level: int, *, service: str, version: str, instance: str, stream: IO[str] | None = None
) -> None:
    """Route the root logger (and uvicorn's) to one JSON handler on stdout."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service, version, instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def current_ids() -> tuple[str | None, str | None]:
    """(request id, trace id) of the request being served, if any."""
    return request_id_var.get(), trace_id_var.get()


class RequestContextMiddleware:
    """Pure-ASGI middleware setting the request id and trace id context variables.

    The trace id comes from this process's current span when tracing records
    spans, else from the incoming trace headers. With `generate_request_id`, a
    request without `x-request-id` gets a new one (the frontend forwards it).
    """

    def __init__(
        self, app: ASGIApp, *, generate_request_id: bool = False, spans: bool = True
    ) -> None:
        self.app = app
        self.generate_request_id = generate_request_id
        self.spans = spans  # False: this process records no spans, read the headers only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        request_id = headers.get("x-request-id")
        if request_id is None and self.generate_request_id:
            request_id = str(uuid.uuid4())
        trace_id: str | None = None
        if self.spans:
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                trace_id = format(span_context.trace_id, "032x")
        if trace_id is None:
            trace_id = trace_id_from_headers(headers)
        request_token = request_id_var.set(request_id)
        trace_token = trace_id_var.set(trace_id)
        try:
            if access_log.isEnabledFor(logging.DEBUG):
                await self._logged(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            request_id_var.reset(request_token)
            trace_id_var.reset(trace_token)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, plus one access line per request (LOG_LEVEL=debug only: it costs ~20 %)."""
        start = time.perf_counter()
        sent = StatusRecorder(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            access_log.debug(
                "%s %s %d",
                scope["method"],
                scope["path"],
                sent.status,
                extra={"status": sent.status, "duration_ms": (time.perf_counter() - start) * 1000},
            )


def log_unhandled(logger: logging.Logger, exc: BaseException, **fields: Any) -> None:
    """Log an unexpected exception once, as JSON with its traceback."""
    logger.error("unhandled error: %s", exc, exc_info=exc, extra=fields)
