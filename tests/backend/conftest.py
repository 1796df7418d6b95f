"""In-process backend apps (lifespan run, store in tmp_path) behind httpx.ASGITransport."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.settings import BackendSettings
from tests.support.asgi import app_client

BackendFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(name="db_path")
def _db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "tasks.db"


@pytest.fixture(name="make_backend")
def _make_backend(db_path: Path) -> BackendFactory:
    """Build a backend app on the shared test store; use as `async with make_backend("v2")`."""

    @contextlib.asynccontextmanager
    async def make(version: str = "v1", **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        span_exporter = overrides.pop("span_exporter", None)
        settings = dataclasses.replace(
            BackendSettings(),
            version=version,
            instance=f"backend-{version}-0",
            tasks_db=db_path,
            **overrides,
        )
        app = create_app(settings, span_exporter=span_exporter)
        async with app_client(app, "http://backend") as client:
            yield client

    return make


@pytest.fixture(name="v1")
async def _v1(make_backend: BackendFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_backend("v1") as client:
        yield client


@pytest.fixture(name="v2")
async def _v2(make_backend: BackendFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_backend("v2") as client:
        yield client
