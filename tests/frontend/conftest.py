"""A fake backend (aiohttp.web on a loopback port, in this process) that records what it
received and answers what the test tells it to; and the frontend app in-process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from frontend.app import create_app
from frontend.settings import FrontendSettings
from tests.support.asgi import app_client
from tests.support.procs import free_port


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop_connection: bool = False


@dataclass
class FakeBackend:
    url: str = ""
    version: str = "v2"
    instance: str = "backend-v2-0"
    received: list[dict[str, Any]] = field(default_factory=list)
    reply: Reply | None = None

    def default_body(self, path: str) -> Any:
        if path == "/api/headers":
            return {"version": self.version, "instance": self.instance,
                    "headers": self.received[-1]["headers"]}  # fmt: skip
        return {"version": self.version, "instance": self.instance,
                "tasks": [{"id": 1, "title": "<script>alert(1)</script>", "done": False,
                           "priority": "high"}]}  # fmt: skip

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": await request.read(),
            }
        )
        reply = self.reply or Reply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)  # simulates a slow backend, not a test wait
        if reply.drop_connection:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        body = reply.body if reply.body is not None else self.default_body(request.path)
        headers = {"x-backend-version": self.version, "x-backend-instance": self.instance}
        headers.update(reply.headers)
        if isinstance(body, (dict, list)):
            return web.Response(
                status=reply.status, body=json.dumps(body), headers=headers,
                content_type="application/json",
            )  # fmt: skip
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=reply.status, body=data, headers=headers)


@pytest.fixture(name="fake")
async def _fake() -> AsyncIterator[FakeBackend]:
    fake = FakeBackend()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


FrontendFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(name="make_frontend")
def _make_frontend() -> FrontendFactory:
    @contextlib.asynccontextmanager
    async def make(backend_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        span_exporter = overrides.pop("span_exporter", None)
        settings = dataclasses.replace(
            FrontendSettings(), instance="frontend-0", backend_url=backend_url, **overrides
        )
        app = create_app(settings, span_exporter=span_exporter)
        async with app_client(app, "http://frontend") as client:
            yield client

    return make


@pytest.fixture(name="frontend")
async def _frontend(fake: FakeBackend, make_frontend: FrontendFactory):
    async with make_frontend(fake.url) as client:
        yield client
