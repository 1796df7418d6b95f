"""The task store: one SQLite file shared by every backend process.

v1 and v2 replicas write the same file at once (locally and in compose), so:
WAL journal (readers never wait for the writer), a busy timeout (a writer
waits for another process's write instead of failing), and every write in a
`BEGIN IMMEDIATE` transaction (it takes the write lock before reading, so a
read-modify-write cannot interleave with another process's). Each thread gets
its own connection; the async app calls writes from a worker thread.

Columns are never dropped by a version that does not know them: v1 updates
only the fields it was sent, so a v2 task keeps its priority.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PRIORITIES = ("low", "normal", "high")
BUSY_TIMEOUT_MS = 10_000
IDEMPOTENCY_TTL = timedelta(days=1)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SEED_TASKS = (
    ("Try the canary: send x-canary: true", "high"),
    ("Trip the circuit breaker with mesh load", "normal"),
    ("Inject a fault and watch outlier ejection", "normal"),
    ("Follow one trace from gateway to backend", "low"),
)

# v2 orders by priority, then by age; v1 by id.
_ORDER_V1 = "ORDER BY id"
_ORDER_V2 = "ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, id"
_COLUMNS = "id, title, done, priority, created_at, updated_at"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Task:
    id: int
    title: str
    done: bool
    priority: str
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Task:
        return cls(row[0], row[1], bool(row[2]), row[3], row[4], row[5])


@dataclass(frozen=True)
class StoredReply:
    """The first reply given for an Idempotency-Key."""

    status: int
    body: dict[str, Any]


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class TaskStore:
    """Tasks in one SQLite file; safe for several threads and processes."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writes = 0  # commits made by this process (data_version misses a connection's own)
        self._serials = itertools.count()  # which connection a data_version belongs to
        # One writer at a time in this process. SQLite's own busy handler would make the
        # others sleep and poll (1, 2, 5 ... 100 ms): under 32 concurrent POSTs that put
        # the p99 at over a second. Other processes still meet the busy handler.
        self._writer = threading.Lock()

    # -- connections -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
                self._local.serial = next(self._serials)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its start."""
        conn = self._conn()
        with self._writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            with self._lock:
                self._writes += 1

    def open(self, *, seed: bool) -> None:
        """Create the file, the schema and (on the very first start only) the seed tasks."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = self._journal_mode_wal(self._conn())
        if str(mode).lower() != "wal":
            raise RuntimeError(f"TASKS_DB {self.path}: cannot switch to WAL mode (got {mode})")
        with self._write() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            # Retries come within seconds; a day of keys is plenty and bounds the table.
            cutoff = (datetime.now(UTC) - IDEMPOTENCY_TTL).isoformat(timespec="milliseconds")
            conn.execute(
                "DELETE FROM idempotency WHERE created_at < ?", (cutoff.replace("+00:00", "Z"),)
            )
            first = conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('seeded', ?)", (now(),)
            ).rowcount
            if first and seed:
                stamp = now()
                conn.executemany(
                    "INSERT INTO tasks (title, priority, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    [(title, priority, stamp, stamp) for title, priority in SEED_TASKS],
                )

    @staticmethod
    def _journal_mode_wal(conn: sqlite3.Connection) -> str:
        """WAL is a property of the file; setting it needs no transaction and is idempotent.
        Switching a new file to WAL takes an exclusive lock without SQLite's busy handler,
        so replicas that start together on a fresh file can meet "database is locked":
        they retry until the first has switched it (then the pragma is a no-op)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    # -- reads ---------------------------------------------------------------

    def read_stamp(self) -> tuple[int, int, int]:
        """A value that changes whenever any process has committed to the file since.

        `PRAGMA data_version` of this thread's connection changes on every commit by
        any other connection (of this or another process); this process's own
        commit count covers the one connection whose commits it does not show.
        Each connection counts on its own, so the stamp names the connection too.
        Read it BEFORE the data it stamps: a commit in between then only makes
        the stamp look older than the data (a needless re-read), never newer.
        """
        writes = self._writes
        conn = self._conn()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        return self._local.serial, int(version), writes

    def list_tasks(self, *, by_priority: bool) -> list[Task]:
        order = _ORDER_V2 if by_priority else _ORDER_V1
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM tasks {order}").fetchall()
        return [Task.from_row(row) for row in rows]

    def get(self, task_id: int) -> Task | None:
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
            .fetchone()
        )
        return Task.from_row(row) if row else None

    # -- writes --------------------------------------------------------------

    def create(
        self,
        title: str,
        priority: str | None,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        render: Any = None,
    ) -> tuple[Task | None, StoredReply | None]:
        """Insert a task, or return the stored first reply for a repeated Idempotency-Key.

        `render(task) -> (status, body)` builds the reply to remember; it runs
        inside the transaction, so the task and its reply are stored together.
        Returns (new task, None) or (None, first reply).
        """
        with self._write() as conn:
            if idempotency_key is not None:
                row = conn.execute(
                    "SELECT fingerprint, status, body FROM idempotency WHERE key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row[0] != fingerprint:
                        raise IdempotencyConflict(idempotency_key)
                    return None, StoredReply(row[1], json.loads(row[2]))
            stamp = now()
            cursor = conn.execute(
                "INSERT INTO tasks (title, priority, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (title, priority or "normal", stamp, stamp),
            )
            task_id = int(cursor.lastrowid or 0)
            task = Task(task_id, title, False, priority or "normal", stamp, stamp)
            if idempotency_key is not None and render is not None:
                status, body = render(task)
                conn.execute(
                    "INSERT INTO idempotency (key, fingerprint, status, body, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (idempotency_key, fingerprint, status, json.dumps(body), stamp),
                )
            return task, None

    def update(self, task_id: int, changes: Mapping[str, Any]) -> Task | None:
        """Change only the given fields (title, done, priority); None if the task is gone."""
        allowed = {"title", "done", "priority"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown task fields: {sorted(unknown)}")
        with self._write() as conn:
            if not changes:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
                ).fetchone()
                return Task.from_row(row) if row else None
            names = sorted(changes)
            assignments = ", ".join(f"{name} = ?" for name in names)
            values = [int(changes[n]) if n == "done" else changes[n] for n in names]
            row = conn.execute(
                f"UPDATE tasks SET {assignments}, updated_at = ? WHERE id = ? RETURNING {_COLUMNS}",
                (*values, now(), task_id),
            ).fetchone()
            return Task.from_row(row) if row else None

    def delete(self, task_id: int) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount > 0


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Identifies a request for Idempotency-Key reuse checks."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
