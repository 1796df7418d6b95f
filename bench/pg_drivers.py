"""Which PostgreSQL driver the backend uses: asyncpg vs psycopg 3 (async, with psycopg_pool).

`.venv/bin/python bench/pg_drivers.py` starts a local server (mesh.pgserver, Debian's
PostgreSQL), then for each driver runs the backend's two hot queries with 32 concurrent
tasks through a pool of 10 connections, in one event loop, as the backend would: the
list read (SELECT of 50 rows) and the create (INSERT ... RETURNING in a transaction).
It prints ops/s, p50 and p99 per driver and query, and this process's CPU per op
(the backend's cost, not the server's). Both drivers' rounds alternate, 3 rounds each;
the median round is shown. Needs `pip install asyncpg psycopg[binary] psycopg-pool`.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench.usage import no_options  # noqa: E402
from mesh import pgserver  # noqa: E402
from mesh.processes import free_port  # noqa: E402

CONCURRENCY = 32
POOL = 10
OPS = 4000
ROUNDS = 3
SETUP = """
DROP TABLE IF EXISTS bench_tasks;
CREATE TABLE bench_tasks (id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL,
  done BOOLEAN NOT NULL DEFAULT false, priority TEXT NOT NULL DEFAULT 'normal',
  created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
INSERT INTO bench_tasks (title, created_at, updated_at)
  SELECT 'task ' || g, now(), now() FROM generate_series(1, 50) g;
"""
LIST = (
    "SELECT id, title, done, priority, created_at, updated_at FROM bench_tasks ORDER BY id LIMIT 50"
)
INSERT = (
    "INSERT INTO bench_tasks (title, priority, created_at, updated_at)"
    " VALUES ({p}, 'normal', now(), now()) RETURNING id, created_at"
)

Op = Callable[[], Awaitable[object]]


async def drive(op: Op) -> tuple[float, float, float, float]:
    """(ops/s, p50 ms, p99 ms, CPU us/op of this process) for OPS calls at CONCURRENCY."""
    latencies: list[float] = []
    left = OPS

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    q = statistics.quantiles(latencies, n=100)
    return OPS / wall, q[49] * 1000, q[98] * 1000, cpu / OPS * 1e6


async def asyncpg_ops(
    url: str, reset: bool = True
) -> tuple[dict[str, Op], Callable[[], Awaitable[None]]]:
    """RESET False: a no-op reset on release (backend/pgstore.py's choice) instead of
    asyncpg's default query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), one round
    trip per use; psycopg_pool sends nothing on return unless a transaction is open."""
    pool = await asyncpg.create_pool(
        url, min_size=POOL, max_size=POOL, **({} if reset else {"reset": _keep})
    )

    async def read() -> object:
        async with pool.acquire() as conn:
            return await conn.fetch(LIST)

    async def write() -> object:
        async with pool.acquire() as conn, conn.transaction():
            return await conn.fetchrow(INSERT.format(p="$1"), "bench")

    return {"list": read, "create": write}, pool.close


async def _keep(_: asyncpg.Connection) -> None:
    """Nothing to reset: no session state is changed (asyncpg still rolls back an open
    transaction before calling this)."""


async def asyncpg_noreset_ops(url: str) -> tuple[dict[str, Op], Callable[[], Awaitable[None]]]:
    return await asyncpg_ops(url, reset=False)


async def psycopg_ops(url: str) -> tuple[dict[str, Op], Callable[[], Awaitable[None]]]:
    import psycopg_pool  # the bench extra (make bench); --help works without it

    pool = psycopg_pool.AsyncConnectionPool(url, min_size=POOL, max_size=POOL, open=False)
    await pool.open(wait=True)

    async def read() -> object:
        async with pool.connection() as conn:
            cur = await conn.execute(LIST)
            return await cur.fetchall()

    async def write() -> object:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(INSERT.format(p="%s"), ("bench",))
            return await cur.fetchone()

    return {"list": read, "create": write}, pool.close


async def bench(url: str) -> None:
    conn = await asyncpg.connect(url)
    await conn.execute(SETUP)
    await conn.close()
    drivers = {
        "asyncpg": asyncpg_ops,
        "asyncpg-noreset": asyncpg_noreset_ops,
        "psycopg": psycopg_ops,
    }
    results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for _ in range(ROUNDS):
        for name, make in drivers.items():
            ops, close = await make(url)
            for query, op in ops.items():
                for _warm in range(200):
                    await op()
                results.setdefault((name, query), []).append(await drive(op))
            await close()
    print(f"{'driver':16} {'query':8} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/op':>10}")
    for (name, query), rounds in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rate, p50, p99, cpu = sorted(rounds)[len(rounds) // 2]
        print(f"{name:16} {query:8} {rate:8.0f} {p50:8.2f} {p99:8.2f} {cpu:10.0f}")


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="pg-drivers-"))
    root.chmod(0o755)  # the server may run as nobody (pgserver)
    port = free_port()
    popen = pgserver.start(
        root / "data", port, user="bench", password="bench", log_path=root / "pg.log"
    )
    server = pgserver.LocalServer(popen, port, "bench", "bench")
    try:
        pgserver.wait_accepting(port, popen)
        asyncio.run(bench(server.url))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    no_options(__doc__)
    sys.exit(main())
