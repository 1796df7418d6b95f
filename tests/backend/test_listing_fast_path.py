"""GET /api/tasks answered from the rendered list below FastAPI (issue 16): the same reply,
every observable kept (metrics, span, identity headers, the fault toggle), never stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import Message, Receive, Scope, Send

from backend.listing import ListingCache
from backend.listing_fast_path import ListingFastPath

from .conftest import BackendFactory


def count_route_calls(app: Any) -> list[str]:
    """Wrap the FastAPI route of GET /api/tasks: the list records each request it serves."""
    calls: list[str] = []
    (route,) = [
        r
        for r in app.router.routes
        if isinstance(r, APIRoute) and r.path == "/api/tasks" and "GET" in r.methods
    ]
    inner = route.app

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await inner(scope, receive, send)

    route.app = counted
    return calls


def reply(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return r.status_code, list(r.headers.multi_items()), r.content


async def test_the_route_renders_once_per_change_and_the_fast_path_repeats_it_exactly(
    make_backend: BackendFactory, store_location: object
):
    sqlite = isinstance(store_location, Path)  # a PostgreSQL store has no stamp
    async with make_backend("v2") as c:
        calls = count_route_calls(c.app)
        rendered = await c.get("/api/tasks")
        again = [await c.get("/api/tasks") for _ in range(3)]
        assert all(reply(r) == reply(rendered) for r in again)
        assert len(calls) == (1 if sqlite else 4)
        created = await c.post("/api/tasks", json={"title": "after the cache"})
        assert created.status_code == 201
        fresh = await c.get("/api/tasks")
        assert "after the cache" in [t["title"] for t in fresh.json()["tasks"]]
        assert len(calls) == (2 if sqlite else 5)
        # a query changes nothing the route answers, so it is the same reply
        queried = await c.get("/api/tasks", params={"page": "1"})
        assert reply(queried) == reply(fresh)
        # another method goes to the app, which answers it as before: FastAPI has no HEAD
        head = await c.head("/api/tasks")
        assert head.status_code == 405 and head.headers["allow"] == "GET, POST"


async def test_fast_replies_are_counted_and_traced_under_the_route(make_backend: BackendFactory):
    exporter = InMemorySpanExporter()
    async with make_backend("v1", span_exporter=exporter) as c:
        calls = count_route_calls(c.app)
        for _ in range(3):
            assert (await c.get("/api/tasks")).status_code == 200
        metrics = (await c.get("/metrics")).text
    assert len(calls) in (1, 3)  # 3 on PostgreSQL: no stamp, every GET renders
    line = 'http_server_requests_total{method="GET",route="/api/tasks",status="200",version="v1"}'
    assert f"{line} 3.0" in metrics
    listing_spans = [s for s in exporter.get_finished_spans() if "/api/tasks" in s.name]
    assert [s.name for s in listing_spans] == ["GET /api/tasks"] * 3
    assert {s.attributes.get("http.route") for s in listing_spans} == {"/api/tasks"}


async def test_the_fault_toggle_still_fails_a_cached_listing(make_backend: BackendFactory):
    async with make_backend("v1") as c:
        calls = count_route_calls(c.app)
        assert (await c.get("/api/tasks")).status_code == 200  # rendered and cached
        put = await c.put("/admin/fault", json={"status": 503})
        assert put.status_code == 200
        r = await c.get("/api/tasks")
        assert r.status_code == 503 and r.headers["x-fault-injected"] == "true"
        assert r.headers["x-backend-version"] == "v1"
        await c.request("DELETE", "/admin/fault")
        ok = await c.get("/api/tasks")
        assert ok.status_code == 200 and ok.headers["x-backend-instance"] == "backend-v1-0"
        assert len(calls) in (1, 2)


class _Store:
    def __init__(self, stamp: object | None = 1, error: Exception | None = None):
        self.stamp, self.error = stamp, error

    def read_stamp(self) -> object | None:
        if self.error is not None:
            raise self.error
        return self.stamp


async def _call(fast: ListingFastPath, method: str = "GET") -> tuple[list[Message], list[str]]:
    sent: list[Message] = []
    scope: Scope = {"type": "http", "method": method, "path": "/api/tasks", "headers": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await fast(scope, receive, send)
    return sent, [m["type"] for m in sent]


@pytest.mark.parametrize(
    ("store", "cached_under"),
    [
        (_Store(stamp=None), None),  # PostgreSQL: no stamp, never cached
        (_Store(stamp=2), 1),  # a commit since the list was rendered
        (_Store(error=RuntimeError("database is locked")), 1),  # the app answers the error
    ],
)
async def test_anything_but_a_current_listing_goes_to_the_app(
    store: _Store, cached_under: object | None
):
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["method"])

    listing = ListingCache()
    listing.put(cached_under, b"{}")
    fast = ListingFastPath(app, store, listing, route=object())  # type: ignore[arg-type]
    sent, _ = await _call(fast)
    assert sent == [] and seen == ["GET"]


async def test_a_current_listing_is_sent_with_its_length_and_type():
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app is not called")

    listing = ListingCache()
    listing.put(7, b'{"tasks":[]}')
    route = object()
    fast = ListingFastPath(app, _Store(stamp=7), listing, route=route)  # type: ignore[arg-type]
    sent, types = await _call(fast)
    assert types == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"]) == {
        b"content-length": b"12",
        b"content-type": b"application/json",
    }
    assert sent[1]["body"] == b'{"tasks":[]}'
