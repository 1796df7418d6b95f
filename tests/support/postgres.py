"""A real PostgreSQL server for tests: Debian's binaries via mesh.pgserver, on a free port.

One server per test session (the `pg_server` fixture of tests/backend/conftest.py); each
test gets its own fresh database on it (`new_database`), so tests never see each other's tasks.
Tests that kill the server start their own (`local_server`), same port and data on restart.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backend.dburl import PostgresUrl
from mesh import pgserver
from tests.support.procs import free_port

USER = "taskmesh"
PASSWORD = "test-only-password"
_names = itertools.count()


def scratch_dir(prefix: str) -> Path:
    """A temporary directory the server's user can enter (it may run as nobody)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def start_server(root: Path, port: int | None = None) -> pgserver.LocalServer:
    """Start (initdb once) the server of ROOT/data and wait until it accepts connections."""
    port = port or free_port()
    popen = pgserver.start(
        root / "data", port, user=USER, password=PASSWORD, log_path=root / "postgres.log"
    )
    server = pgserver.LocalServer(popen, port, USER, PASSWORD)
    try:
        pgserver.wait_accepting(port, popen)
    except pgserver.PgServerError as exc:
        server.stop()
        log = (root / "postgres.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}\n{log}") from exc
    return server


def psql(server: pgserver.LocalServer, sql: str, database: str = "postgres") -> str:
    """Run SQL with Debian's psql; its output (unaligned, tuples only)."""
    done = subprocess.run(
        [
            str(pgserver.bin_dir() / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            server.user,
            "-d",
            database,
            "-c",
            sql,
        ],  # fmt: skip
        env={**os.environ, "PGPASSWORD": server.password, "PGCONNECT_TIMEOUT": "10"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
    return done.stdout.strip()


def new_database(server: pgserver.LocalServer) -> PostgresUrl:
    """A fresh, empty database on SERVER; its URL as TASKS_DB takes it."""
    name = f"t{os.getpid()}_{next(_names)}"
    psql(server, f"CREATE DATABASE {name}")
    return PostgresUrl(
        f"postgresql://{server.user}:{server.password}@127.0.0.1:{server.port}/{name}"
    )


@contextlib.contextmanager
def local_server(prefix: str = "pg-") -> Iterator[tuple[pgserver.LocalServer, Path]]:
    """A server of its own (for tests that stop or kill it); removed at the end."""
    root = scratch_dir(prefix)
    server = start_server(root)
    try:
        yield server, root
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
