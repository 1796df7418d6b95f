"""In-process backend apps (lifespan run) behind httpx.ASGITransport, on either store.

`store_location` is the contract-suite switch: every test that uses `make_backend`,
`v1` or `v2` runs once on SQLite (a file in tmp_path) and once on PostgreSQL (a fresh
database on the session's real server, `pg_server`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.dburl import StoreLocation
from backend.settings import BackendSettings
from mesh.pgserver import LocalServer
from tests.support import postgres
from tests.support.asgi import app_client

BackendFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(name="db_path")
def _db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "tasks.db"


@pytest.fixture(scope="session", name="pg_server")
def _pg_server() -> Iterator[LocalServer]:
    """One real PostgreSQL server for the session (Debian's, as nobody when root)."""
    with postgres.local_server("pg-session-") as (server, _root):
        yield server


@pytest.fixture(name="store_location", params=["sqlite", "postgres"])
def _store_location(request: pytest.FixtureRequest, db_path: Path) -> StoreLocation:
    if request.param == "sqlite":
        return db_path
    return postgres.new_database(request.getfixturevalue("pg_server"))


@pytest.fixture(name="make_backend")
def _make_backend(store_location: StoreLocation) -> BackendFactory:
    """Build a backend app on the shared test store; use as `async with make_backend("v2")`."""

    @contextlib.asynccontextmanager
    async def make(version: str = "v1", **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        span_exporter = overrides.pop("span_exporter", None)
        settings = dataclasses.replace(
            BackendSettings(),
            version=version,
            instance=f"backend-{version}-0",
            tasks_db=store_location,
            **overrides,
        )
        app = create_app(settings, span_exporter=span_exporter)
        async with app_client(app, "http://backend") as client:
            yield client

    return make


@pytest.fixture(name="make_backend_on")
def _make_backend_on() -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Like make_backend, on a store the test names: `async with make_backend_on(db, "v1")`."""

    @contextlib.asynccontextmanager
    async def make(
        location: StoreLocation, version: str = "v1"
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = dataclasses.replace(
            BackendSettings(), version=version, instance=f"backend-{version}-0", tasks_db=location
        )
        async with app_client(create_app(settings), "http://backend") as client:
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
