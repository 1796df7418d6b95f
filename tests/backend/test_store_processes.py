"""The store contract across real backend processes, on SQLite and on a real PostgreSQL.

What one process cannot show: an Idempotency-Key retried at once through several
processes creates one task, v1 and v2 processes write at the same time, a restart
keeps the data, replicas starting together migrate once, and PostgreSQL dying under
a write load gives 503s with the cause, then recovery without restarting the backend.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.dburl import PostgresUrl, StoreLocation
from mesh.pgserver import LocalServer
from tests.support import postgres
from tests.support.procs import VENV_BIN, Proc, free_port, start_backend, wait_http_ok

pytestmark = pytest.mark.integration


def launch(version: str, db: StoreLocation, log_dir: Path, name: str) -> Proc:
    """A backend process (not waited for)."""
    return start_backend(version, db, log_dir, name, METRICS_ENABLED="0")


@pytest.fixture(name="procs")
def _procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def backends(procs: list[Proc], db: StoreLocation, log_dir: Path, *versions: str) -> list[Proc]:
    """Start one backend per version on DB, all at once, and wait until each is ready."""
    new = [launch(v, db, log_dir, f"backend-{v}-{len(procs) + i}") for i, v in enumerate(versions)]
    procs.extend(new)
    for proc in new:
        wait_http_ok(proc, timeout=60)
    return new


def test_one_idempotency_key_retried_through_several_processes_makes_one_task(
    store_location: StoreLocation, tmp_path: Path, procs: list[Proc]
):
    servers = backends(procs, store_location, tmp_path, "v1", "v2", "v1", "v2")
    key = f"retry-{uuid.uuid4()}"
    title = f"exactly once {key}"

    def post(i: int) -> httpx.Response:
        url = servers[i % len(servers)].url
        return httpx.post(
            f"{url}/api/tasks", json={"title": title}, headers={"Idempotency-Key": key}, timeout=30
        )

    with ThreadPoolExecutor(max_workers=24) as pool:
        replies = list(pool.map(post, range(48)))
    created = [r for r in replies if r.status_code == 201]
    in_flight = [r for r in replies if r.status_code == 409]
    assert len(created) + len(in_flight) == len(replies), [r.text for r in replies]
    assert created, "no request got the task"
    assert len({r.json()["id"] for r in created}) == 1
    assert all(r.json()["error"] == "idempotency_key_in_flight" for r in in_flight)
    listed = httpx.get(f"{servers[0].url}/api/tasks", timeout=30).json()["tasks"]
    assert [t["title"] for t in listed].count(title) == 1


def test_v1_and_v2_processes_write_at_once_and_a_restart_keeps_everything(
    store_location: StoreLocation, tmp_path: Path, procs: list[Proc]
):
    v1, v2 = backends(procs, store_location, tmp_path, "v1", "v2")
    run = uuid.uuid4().hex[:8]

    def post(i: int) -> httpx.Response:
        if i % 2:
            target, body = v1, {"title": f"{run} v1 {i}"}
        else:
            target, body = v2, {"title": f"{run} v2 {i}", "priority": "high"}
        return httpx.post(f"{target.url}/api/tasks", json=body, timeout=30)

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(post, range(60)))
    assert [r.status_code for r in replies] == [201] * 60, [r.text for r in replies if r.is_error]
    ids = {r.json()["id"] for r in replies}
    assert len(ids) == 60
    # v1 renames a v2 task: the priority v1 cannot see survives
    high = next(r.json() for r in replies if "priority" in r.json())
    assert httpx.patch(f"{v1.url}/api/tasks/{high['id']}", json={"done": True}).status_code == 200
    for proc in (v1, v2):
        proc.stop()
    (again,) = backends(procs, store_location, tmp_path, "v2")
    listed = httpx.get(f"{again.url}/api/tasks", timeout=30).json()["tasks"]
    mine = {t["id"]: t for t in listed if t["title"].startswith(run)}
    assert set(mine) == ids
    assert mine[high["id"]]["priority"] == "high" and mine[high["id"]]["done"] is True


def test_replicas_starting_together_migrate_once(
    pg_server: LocalServer, tmp_path: Path, procs: list[Proc]
):
    db = postgres.new_database(pg_server)
    servers = backends(procs, db, tmp_path, "v1", "v2", "v1", "v2")
    name = db.url.rsplit("/", 1)[1]
    rows = postgres.psql(
        pg_server, "SELECT version, applied_by FROM schema_migrations ORDER BY version", name
    ).splitlines()
    assert [row.split("|")[0] for row in rows] == ["1", "2"]
    assert len({row.split("|")[1] for row in rows}) == 1  # one replica applied both
    seeded = httpx.get(f"{servers[0].url}/api/tasks", timeout=30).json()["tasks"]
    assert len(seeded) == 4  # seeded once, not once per replica


def test_a_malformed_tasks_db_stops_the_backend_with_one_line(tmp_path: Path):
    for value, says in [
        ("mysql://db/tasks", "unknown scheme 'mysql'"),
        ("postgresql://db:port/tasks", "bad URL"),
        ("postgresql://db:5432", "names no database"),
    ]:
        done = subprocess.run(
            [str(VENV_BIN / "backend")],
            env={"TASKS_DB": value, "PATH": "/usr/bin:/bin", "PORT": str(free_port())},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("backend: error: TASKS_DB: "), lines
        assert says in lines[0]


def _wait(predicate, what: str, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    start_at = time.monotonic()
    while time.monotonic() - start_at < timeout:
        if predicate():
            return time.monotonic() - start_at
        time.sleep(0.05)  # poll interval, not a pass condition
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=10).status_code
    except httpx.TransportError:
        return 0


def test_postgres_killed_under_writes_gives_503s_then_recovers_without_a_restart(
    tmp_path: Path, procs: list[Proc]
):
    with postgres.local_server("pg-kill-") as (first, root):
        restarted: list[LocalServer] = []
        try:
            _kill_and_recover(first, root, restarted, tmp_path, procs)
        finally:
            for server in restarted:
                server.stop()


def _kill_and_recover(
    server: LocalServer, root: Path, restarted: list[LocalServer], tmp_path: Path, procs: list[Proc]
) -> None:
    db = postgres.new_database(server)
    (backend,) = backends(procs, db, tmp_path, "v2")
    pid = backend.popen.pid
    outcomes: dict[str, list[tuple[int, float, dict[str, object]]]] = {}
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                key = f"w{n}-{i}"
                t = time.monotonic()
                try:
                    r = client.post(
                        f"{backend.url}/api/tasks",
                        json={"title": key},
                        headers={"Idempotency-Key": key},
                    )
                    reply = (r.status_code, time.monotonic() - t, r.json())
                except httpx.TransportError as exc:
                    reply = (0, time.monotonic() - t, {"transport": str(exc)})
                outcomes.setdefault(key, []).append(reply)
                i += 1

    def created() -> int:
        return sum(1 for replies in list(outcomes.values()) for o in replies if o[0] == 201)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: created() >= 40, "40 tasks created before the kill")
        server.stop(signal.SIGKILL)  # a crash: no shutdown, connections just die
        _wait(lambda: _status(f"{backend.url}/readyz") == 503, "/readyz failing while down")
        ready = httpx.get(f"{backend.url}/readyz", timeout=10).json()
        assert ready["cause"] == "store_unavailable"
        t = time.monotonic()
        down = httpx.get(f"{backend.url}/api/tasks", timeout=10)
        assert time.monotonic() - t < 5.0
        assert down.status_code == 503 and down.json()["cause"] == "store_unavailable"
        assert down.json()["error"] == "store_unavailable" and down.json()["message"]
        restarted.append(postgres.start_server(root, port=server.port))  # same data and port
        recovered = _wait(lambda: _status(f"{backend.url}/readyz") == 200, "recovery", timeout=30)
        before = created()
        _wait(lambda: created() >= before + 20, "20 tasks created after the recovery")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert backend.popen.poll() is None and backend.popen.pid == pid  # never restarted
    assert recovered < 10.0
    failed = [
        o for replies in outcomes.values() for o in replies if o[0] not in (201, 503)
    ]  # fmt: skip
    assert not failed, failed[:5]
    assert all(o[1] < 5.0 for replies in outcomes.values() for o in replies if o[0] == 503)
    assert any(o[0] == 503 for replies in outcomes.values() for o in replies)
    # retry every key once more: a key whose first try failed is created now, and
    # every key ends with exactly one task, each one whole
    with httpx.Client(timeout=30) as client:
        for key in outcomes:
            r = client.post(
                f"{backend.url}/api/tasks",
                json={"title": key},
                headers={"Idempotency-Key": key},
            )
            assert r.status_code == 201, r.text
            firsts = [o[2]["id"] for o in outcomes[key] if o[0] == 201]
            assert all(i == r.json()["id"] for i in firsts)
        listed = client.get(f"{backend.url}/api/tasks").json()["tasks"]
    mine = [t for t in listed if t["title"] in outcomes]
    assert sorted(t["title"] for t in mine) == sorted(outcomes)
    assert all(t["created_at"] == t["updated_at"] and t["priority"] == "normal" for t in mine)


def test_a_backend_started_before_postgres_is_unready_then_serves(
    tmp_path: Path, procs: list[Proc]
):
    root = postgres.scratch_dir("pg-late-")
    port = free_port()
    url = f"postgresql://{postgres.USER}:{postgres.PASSWORD}@127.0.0.1:{port}/postgres"
    backend = launch("v1", PostgresUrl(url), tmp_path, "backend-v1-late")
    procs.append(backend)
    wait_http_ok(backend, "/healthz", timeout=60)
    r = httpx.get(f"{backend.url}/readyz", timeout=10)
    assert r.status_code == 503 and r.json()["cause"] == "store_unavailable"
    server = postgres.start_server(root, port=port)
    try:
        wait_http_ok(backend, "/readyz", timeout=30)
        assert len(httpx.get(f"{backend.url}/api/tasks", timeout=10).json()["tasks"]) == 4
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


async def test_a_key_whose_first_request_is_in_flight_gets_a_409_then_its_task(
    pg_server: LocalServer, make_backend_on
):
    """The first request is a transaction holding the key's row, not yet committed."""
    db = postgres.new_database(pg_server)
    async with make_backend_on(db, "v1") as v1:
        assert (await v1.get("/readyz")).status_code == 200  # migrated
        holder = await asyncpg.connect(db.url)
        try:
            tx = holder.transaction()
            await tx.start()
            await holder.execute(
                "INSERT INTO idempotency (key, fingerprint, status, body, created_at)"
                " VALUES ('held', 'x', 0, '', now())"
            )
            r = await v1.post(
                "/api/tasks", json={"title": "held"}, headers={"Idempotency-Key": "held"}
            )
            assert r.status_code == 409 and r.json()["error"] == "idempotency_key_in_flight"
            await tx.rollback()  # the first request failed: the key is free again
        finally:
            await holder.close()
        r = await v1.post("/api/tasks", json={"title": "held"}, headers={"Idempotency-Key": "held"})
        assert r.status_code == 201
        again = await v1.post(
            "/api/tasks", json={"title": "held"}, headers={"Idempotency-Key": "held"}
        )
        assert again.status_code == 201 and again.json()["id"] == r.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
