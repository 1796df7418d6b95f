"""Tasks in PostgreSQL (TASKS_DB=postgresql://...), for backends on several nodes.

asyncpg, chosen by bench/pg_drivers.py: on this machine it did ~1.6x psycopg 3's
creates and ~1.8x its list reads per second at ~45% less client CPU per query (README,
"The task store").

Failure is a state, not a hang: every call (pool wait, connect, queries) runs under
one OP_TIMEOUT_S deadline and any connection-level failure becomes StoreUnavailable
(a 503 naming the cause). The pool keeps no connection it saw break and opens new
ones on demand, so the backend recovers by itself once the server is back. Every
write is one transaction: a task is stored whole or not at all.

Idempotency-Key is a unique constraint, not a read-then-write: the request inserts
its key first (ON CONFLICT DO NOTHING). A concurrent request with the same key
waits on that row's insert: when the first commits it gets the stored reply, when the
first is still running after IDEMPOTENCY_WAIT it gets IdempotencyInFlight (a 409);
never a second task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from backend.dburl import PostgresUrl
from backend.migrations import migrate
from backend.store import IDEMPOTENCY_TTL, SEED_TASKS, IdempotencyConflict, StoredReply, Task
from backend.stores import IdempotencyInFlight, Render, StoreUnavailable

log = logging.getLogger("backend")

OP_TIMEOUT_S = 4.0  # the bound is 5 s for a 503; the rest is the app's own work
CONNECT_TIMEOUT_S = 2.0
POOL_MAX = 10  # per process; PostgreSQL's default max_connections is 100
IDEMPOTENCY_WAIT = "2s"  # lock_timeout while a same-key request is in flight

_ORDER_V1 = "ORDER BY id"
_ORDER_V2 = "ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, id"
_COLUMNS = "id, title, done, priority, created_at, updated_at"

# What "the database is not there" looks like from asyncpg, as opposed to a bad query.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, a dropped connection
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # 28: wrong password
    asyncpg.exceptions.InvalidCatalogNameError,  # 3D: no such database
    asyncpg.InterfaceError,  # the connection closed under a query
    asyncpg.InternalClientError,  # a connection whose protocol state broke with the server
)


def stamp(value: datetime) -> str:
    """The same text SQLite's store gives: UTC, milliseconds, a Z."""
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _task(row: asyncpg.Record) -> Task:
    return Task(
        row[0], row[1], row[2], row[3], stamp(row[4]), stamp(row[5])
    )  # fmt: skip


async def _keep_session(_: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to undo. This store changes no session state
    (only `SET LOCAL` and transaction-scoped advisory locks, no LISTEN, no cursors
    outside a transaction), and asyncpg rolls back a transaction left open before
    calling this. asyncpg's default reset query is one more round trip per use:
    bench/pg_drivers.py measured +19% list reads, +24% creates, -16% CPU per query."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PostgresStore:
    """The task store on a PostgreSQL server (see the module doc)."""

    def __init__(self, url: PostgresUrl, *, instance: str = ""):
        self.url = url
        self.description = url.redacted
        self.instance = instance or "backend"
        self._pool: asyncpg.Pool | None = None
        self._ready = False  # schema migrated and seeded by some process
        self._ready_lock = asyncio.Lock()
        self._seed = True

    async def open(self, *, seed: bool) -> None:
        """Make the pool (no connection yet) and try the migrations once: a server that
        is down now leaves the backend running and unready until it is back."""
        self._seed = seed
        self._pool = await asyncpg.create_pool(
            self.url.url,
            min_size=0,
            max_size=POOL_MAX,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=OP_TIMEOUT_S,
            max_inactive_connection_lifetime=60.0,
            reset=_keep_session,
        )
        try:
            await self.ping()
        except StoreUnavailable as exc:
            log.warning("store unavailable at start, retrying on use", extra={"reason": str(exc)})

    async def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), OP_TIMEOUT_S)
            self._pool = None

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        """Migrations, expired idempotency keys, and the seed tasks on the very first start."""
        applied = await migrate(conn, applied_by=self.instance)
        if applied:
            log.info("schema migrated", extra={"versions": applied})
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM idempotency WHERE created_at < $1", _now() - IDEMPOTENCY_TTL
            )
            first = await conn.fetchval(
                "INSERT INTO meta (key, value) VALUES ('seeded', $1)"
                " ON CONFLICT (key) DO NOTHING RETURNING key",
                stamp(_now()),
            )
            if first and self._seed:
                moment = _now()
                await conn.executemany(
                    "INSERT INTO tasks (title, priority, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $3)",
                    [(title, priority, moment) for title, priority in SEED_TASKS],
                )

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection on a migrated schema, the whole use bounded by OP_TIMEOUT_S."""
        if self._pool is None:
            raise StoreUnavailable("store not open")
        pool = self._pool
        try:
            async with asyncio.timeout(OP_TIMEOUT_S):
                conn = await pool.acquire()
                try:
                    if not self._ready:
                        async with self._ready_lock:
                            if not self._ready:
                                await self._prepare(conn)
                                self._ready = True
                    yield conn
                except UNAVAILABLE:
                    conn.terminate()  # never back into the pool: the next use gets a new one
                    raise
                finally:
                    await pool.release(conn)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL {self.description}: {_reason(exc)}") from exc

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    def read_stamp(self) -> object | None:
        return None  # no cross-process change counter: never reuse a rendered list

    # -- reads ---------------------------------------------------------------

    async def list_tasks(self, *, by_priority: bool) -> list[Task]:
        order = _ORDER_V2 if by_priority else _ORDER_V1
        async with self._conn() as conn:
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM tasks {order}")
        return [_task(row) for row in rows]

    async def get(self, task_id: int) -> Task | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tasks WHERE id = $1", task_id)
        return _task(row) if row else None

    # -- writes --------------------------------------------------------------

    async def create(
        self,
        title: str,
        priority: str | None,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        render: Render | None = None,
    ) -> tuple[Task | None, StoredReply | None]:
        """Insert a task, or return the stored first reply for a repeated Idempotency-Key."""
        async with self._conn() as conn, conn.transaction():
            moment = _now()
            if idempotency_key is not None:
                replay = await self._claim(conn, idempotency_key, fingerprint, moment)
                if replay is not None:
                    return None, replay
            row = await conn.fetchrow(
                "INSERT INTO tasks (title, priority, created_at, updated_at)"
                f" VALUES ($1, $2, $3, $3) RETURNING {_COLUMNS}",
                title,
                priority or "normal",
                moment,
            )
            task = _task(row)
            if idempotency_key is not None and render is not None:
                status, body = render(task)
                await conn.execute(
                    "UPDATE idempotency SET status = $2, body = $3 WHERE key = $1",
                    idempotency_key,
                    status,
                    json.dumps(body),
                )
            return task, None

    async def _claim(
        self, conn: asyncpg.Connection, key: str, fingerprint: str, moment: datetime
    ) -> StoredReply | None:
        """Own KEY (None: go on and create) or the reply stored for it by its first request."""
        await conn.execute(f"SET LOCAL lock_timeout = '{IDEMPOTENCY_WAIT}'")
        try:
            mine = await conn.fetchval(
                "INSERT INTO idempotency (key, fingerprint, status, body, created_at)"
                " VALUES ($1, $2, 0, '', $3) ON CONFLICT (key) DO NOTHING RETURNING true",
                key,
                fingerprint,
                moment,
            )
        except asyncpg.exceptions.LockNotAvailableError:
            raise IdempotencyInFlight(key) from None
        if mine:
            return None
        row = await conn.fetchrow(
            "SELECT fingerprint, status, body FROM idempotency WHERE key = $1", key
        )
        if row is None or row[1] == 0:  # expired meanwhile, or never given a reply
            raise IdempotencyInFlight(key)
        if row[0] != fingerprint:
            raise IdempotencyConflict(key)
        return StoredReply(row[1], json.loads(row[2]))

    async def update(self, task_id: int, changes: Mapping[str, Any]) -> Task | None:
        """Change only the given fields (title, done, priority); None if the task is gone."""
        allowed = {"title", "done", "priority"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown task fields: {sorted(unknown)}")
        async with self._conn() as conn:
            if not changes:
                row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tasks WHERE id = $1", task_id)
                return _task(row) if row else None
            names = sorted(changes)
            assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, start=3))
            values = [bool(changes[n]) if n == "done" else changes[n] for n in names]
            row = await conn.fetchrow(
                f"UPDATE tasks SET {assignments}, updated_at = $2 WHERE id = $1"
                f" RETURNING {_COLUMNS}",
                task_id,
                _now(),
                *values,
            )
        return _task(row) if row else None

    async def delete(self, task_id: int) -> bool:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM tasks WHERE id = $1", task_id)
        return status.endswith(" 1")
