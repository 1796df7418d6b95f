"""GET /api/tasks from the rendered list, below FastAPI's request handling.

Under load nearly every request is this one, and the list rarely changes: the route
(backend/task_routes.py) renders the body once per store change and keeps it in a
`ListingCache`. This middleware sits innermost of the backend's own middlewares (inside
the fault toggle, the body limit and the identity headers; telemetry outside them all),
so while that body is current it answers with it directly: the same status, headers and
bytes the route answers, the same route template for metrics and spans, but none of
Starlette's and FastAPI's per-request machinery (error middlewares, routing, dependency
solving, a Request and a Response object). Anything else, and the first GET after a
change, goes to the app, which renders and caches.
"""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.listing import ListingCache
from backend.stores import Store

PATH = "/api/tasks"
_HEADERS_TYPE = (b"content-type", b"application/json")


class ListingFastPath:
    """Pure ASGI: a current cached listing answers GET /api/tasks; all else goes to APP."""

    def __init__(self, app: ASGIApp, store: Store, listing: ListingCache, route: BaseRoute):
        self.app = app
        self.store = store
        self.listing = listing
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            try:
                body = self.listing.get(self.store.read_stamp())
            except Exception:  # the route reads the stamp again and answers the error its way
                body = None
            if body is not None:
                scope["route"] = self.route  # as routing would: metrics and spans name it
                headers = [(b"content-length", str(len(body)).encode()), _HEADERS_TYPE]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
