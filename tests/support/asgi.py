"""An in-process app for tests: its lifespan run, an httpx client in front of it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def app_client(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of APP (startup done, shutdown on exit); `client.app` is APP."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
