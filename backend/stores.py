"""The store the app talks to: one async interface over SQLite and PostgreSQL.

`open_store(settings.tasks_db)` picks by TASKS_DB: a path is the embedded SQLite
store (backend.store.TaskStore, run on worker threads for writes exactly as before),
a `postgresql://` URL is backend.pgstore.PostgresStore (asyncpg, on the event loop).

`read_stamp()` is the listing cache's key: SQLite's changes exactly when any process
commits to the file (PRAGMA data_version + own commits). PostgreSQL has no cheap
equivalent across processes and hosts, so it returns None: never cache, always read.

A store that cannot reach its database raises StoreUnavailable, which the app turns
into a 503 with `"cause": "store_unavailable"`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from backend.dburl import PostgresUrl, StoreLocation
from backend.store import StoredReply, Task, TaskStore

Render = Callable[[Task], tuple[int, dict[str, Any]]]


class StoreUnavailable(Exception):
    """The database cannot be reached (down, refusing, too slow); the message says how."""


class IdempotencyInFlight(Exception):
    """Another request with this Idempotency-Key is still being handled."""


class Store(Protocol):
    """What the app needs from a task store (see the module doc)."""

    description: str

    async def open(self, *, seed: bool) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    def read_stamp(self) -> object | None: ...
    async def list_tasks(self, *, by_priority: bool) -> list[Task]: ...
    async def get(self, task_id: int) -> Task | None: ...
    async def create(
        self,
        title: str,
        priority: str | None,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        render: Render | None = None,
    ) -> tuple[Task | None, StoredReply | None]: ...
    async def update(self, task_id: int, changes: Mapping[str, Any]) -> Task | None: ...
    async def delete(self, task_id: int) -> bool: ...


class SqliteStore:
    """TaskStore behind the async interface. Reads stay on the event loop (a WAL read
    never waits for a writer); writes wait for the file's write lock on a worker thread."""

    def __init__(self, path: Path):
        self.inner = TaskStore(path)
        self.description = str(path)

    async def open(self, *, seed: bool) -> None:
        await run_in_threadpool(self.inner.open, seed=seed)

    async def close(self) -> None:
        self.inner.close()

    async def ping(self) -> None:
        self.inner.ping()

    def read_stamp(self) -> object | None:
        return self.inner.read_stamp()

    async def list_tasks(self, *, by_priority: bool) -> list[Task]:
        return self.inner.list_tasks(by_priority=by_priority)

    async def get(self, task_id: int) -> Task | None:
        return self.inner.get(task_id)

    async def create(
        self,
        title: str,
        priority: str | None,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        render: Render | None = None,
    ) -> tuple[Task | None, StoredReply | None]:
        return await run_in_threadpool(
            self.inner.create,
            title,
            priority,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            render=render,
        )

    async def update(self, task_id: int, changes: Mapping[str, Any]) -> Task | None:
        return await run_in_threadpool(self.inner.update, task_id, changes)

    async def delete(self, task_id: int) -> bool:
        return await run_in_threadpool(self.inner.delete, task_id)


def open_store(location: StoreLocation, *, instance: str = "") -> Store:
    """The store for TASKS_DB (not yet opened: the lifespan calls `open`)."""
    if isinstance(location, PostgresUrl):
        from backend.pgstore import PostgresStore  # asyncpg only when it is used

        return PostgresStore(location, instance=instance)
    return SqliteStore(location)
