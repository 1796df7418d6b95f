"""Small helpers shared by the pure-ASGI middlewares of this package.

The middlewares are plain ASGI callables, not Starlette's BaseHTTPMiddleware:
BaseHTTPMiddleware costs about 60 % of a FastAPI endpoint's throughput here
(see the perf baseline), a pure-ASGI wrapper about 2 %.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from starlette.routing import Match, Route
from starlette.types import Message, Scope, Send

#: Scope key where the first middleware leaves the decoded request headers for the others.
HEADERS_KEY = "taskmesh.headers"
UNMATCHED_ROUTE = "unmatched"


class StatusRecorder:
    """A `send` that passes every message on and keeps the response status (500 until a
    response starts: what a middleware reports for an app that raised)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send):
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


def headers_from_raw(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI raw headers as a dict with lower-case names; the first of a repeated name wins."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


def scope_headers(scope: MutableMapping[str, Any]) -> dict[str, str]:
    """The request headers of `scope`, decoded once per request and cached in the scope."""
    cached = scope.get(HEADERS_KEY)
    if cached is None:
        cached = headers_from_raw(scope.get("headers", ()))
        scope[HEADERS_KEY] = cached
    return cached


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/tasks/{task_id}`), set by the router.

    Requests that matched no route share one label value, so a scan of random
    URLs cannot blow up the number of metric series.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class TemplatedRoute(Route):
    """A plain Starlette route that records itself in `scope["route"]` when it matches.

    FastAPI's router sets `scope["route"]` only for its own APIRoute; this does the
    same for a lightweight endpoint, so metrics and spans get its path template.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def allowed_methods(routes: Iterable[Any], scope: Scope) -> str:
    """`Allow` of a 405: every method of every route on the path. Starlette names only
    the first matching route's, and these apps have one route per method."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
