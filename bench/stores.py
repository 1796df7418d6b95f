"""The backend per task store in `make bench` (issue 15): SQLite next to PostgreSQL,
the read path (GET /api/tasks) and the write path (POST /api/tasks), same run.

Four backend v1 processes: a reader and a writer on each store (the writers' tables
grow, so the readers keep the four seed tasks and read the same list). PostgreSQL is
a local server started here (mesh.pgserver: Debian's, as the tests use), reached on
127.0.0.1 directly, no Envoy. Rounds are shuffled as the main table's are; each row
shows its median round and the backend's CPU per request (the server's CPU is not
billed: on a cluster it is another machine's). SQLite's GET reuses its rendered list
until a commit (backend/stores.py); PostgreSQL's reads every time.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import Config, LoadResult, run_load
from bench.processes import Service, start_service
from bench.servers import backend_command
from mesh import pgserver
from mesh.processes import free_port

POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"title": "a task written by make bench"}'
wrk.headers["Content-Type"] = "application/json"
"""
USER, PASSWORD = "bench", "bench-only-password"


@dataclass
class StoreBench:
    configs: list[Config] = field(default_factory=list)
    script: Path = Path()


@contextlib.contextmanager
def started(base_env: dict[str, str], logs: Path) -> Iterator[StoreBench]:
    """A PostgreSQL server and the four backends; everything stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="taskmesh-bench-pg-"))
    root.chmod(0o755)  # the server runs as nobody under root (mesh/pgserver.py)
    port = free_port()
    popen = pgserver.start(root / "data", port, user=USER, password=PASSWORD,
                           log_path=logs / "postgres.log")  # fmt: skip
    server = pgserver.LocalServer(popen, port, USER, PASSWORD)
    services: list[Service] = []
    try:
        pgserver.wait_accepting(port, popen)
        for name in ("reads", "writes"):
            _createdb(server, name)
        script = root / "post.lua"
        script.write_text(POST_SCRIPT)

        def backend(name: str, db: str) -> Service:
            env = {**base_env, "INSTANCE_NAME": name, "TASKS_DB": db}
            services.append(start_service(name, backend_command(), env=env, log_dir=logs))
            return services[-1]

        pg = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/"
        rows = [
            ("sqlite-get", "backend on SQLite, GET /api/tasks", str(root / "reads.db")),
            ("postgres-get", "backend on PostgreSQL, GET /api/tasks", pg + "reads"),
            ("sqlite-post", "backend on SQLite, POST /api/tasks", str(root / "writes.db")),
            ("postgres-post", "backend on PostgreSQL, POST /api/tasks", pg + "writes"),
        ]
        bench = StoreBench(script=script)
        for key, label, db in rows:
            be = backend(f"backend-{key}", db)
            bench.configs.append(Config(key, label, be.url + "/api/tasks", [be]))
        yield bench
    finally:
        for service in services:
            service.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _createdb(server: pgserver.LocalServer, name: str) -> None:
    subprocess.run(
        [str(pgserver.bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(server.port),
         "-U", server.user, name],
        env={"PGPASSWORD": server.password, "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def measure(
    bench: StoreBench, *, rounds: int, connections: int, duration_s: float, warmup_s: float
) -> None:
    """Warm-up, then ROUNDS shuffled rounds over the four rows (runs appended to each)."""

    def load(cfg: Config, seconds: float) -> LoadResult:
        script = bench.script if cfg.key.endswith("-post") else None
        return run_load(cfg.url, connections=connections, duration_s=seconds,
                        servers=cfg.servers, script=script)  # fmt: skip

    for cfg in bench.configs:
        if warmup_s:
            load(cfg, warmup_s)
    for _ in range(rounds):
        for cfg in random.sample(bench.configs, len(bench.configs)):
            cfg.runs.append(load(cfg, duration_s))


def report(bench: StoreBench) -> list[str]:
    """The table; PostgreSQL over SQLite per path. No targets (none missed): it says what
    leaving the embedded store costs."""
    print("\n| task store (issue 15) | req/s | p50 ms | p99 ms | backend CPU us/req | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    by_key = {c.key: c for c in bench.configs}
    for cfg in bench.configs:
        run = cfg.median_run()
        errors = sum(r.errors for r in cfg.runs)
        print(f"| {cfg.label} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
              f"{run.cpu_us_per_req:,.0f} | {errors} |")  # fmt: skip
    print("\n| PostgreSQL / SQLite (median of per-round ratios) | req/s | p99 |")
    print("|---|---:|---:|")
    for path in ("get", "post"):
        pg, lite = by_key[f"postgres-{path}"], by_key[f"sqlite-{path}"]
        rps = statistics.median(a.rps / b.rps for a, b in zip(pg.runs, lite.runs, strict=True))
        p99 = statistics.median(
            a.p99_ms / b.p99_ms for a, b in zip(pg.runs, lite.runs, strict=True)
        )
        print(f"| {path.upper()} /api/tasks | {rps:.2f} | {p99:.2f} |")
    if any(r.errors for cfg in bench.configs for r in cfg.runs):
        print("(errors: wrk's 2 s timeouts or non-2xx answers; see the backend logs)")
    return []
