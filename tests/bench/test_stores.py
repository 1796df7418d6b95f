"""bench/stores.py: the four store rows of `make bench` really load what they name -
SQLite and PostgreSQL backends, GET reads and POST writes - never timing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from bench import stores

pytestmark = pytest.mark.integration


def test_each_row_loads_its_store_and_the_post_rows_write_tasks() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    base = {"LOG_LEVEL": "warning", "OTEL_TRACES_EXPORTER": "none", "APP_VERSION": "v1"}
    try:
        with stores.started(base, logs) as bench:
            assert [c.key for c in bench.configs] == [
                "sqlite-get", "postgres-get", "sqlite-post", "postgres-post"
            ]  # fmt: skip
            stores.measure(bench, rounds=1, connections=4, duration_s=1, warmup_s=0)
            for cfg in bench.configs:
                (run,) = cfg.runs
                assert run.requests > 0 and run.cpu_us_per_req > 0, cfg.key
                listed = httpx.get(cfg.url, timeout=30).json()["tasks"]
                written = [t for t in listed if t["title"] == "a task written by make bench"]
                if cfg.key.endswith("-post"):
                    assert len(written) >= run.requests - run.errors, cfg.key
                else:
                    assert written == [] and len(listed) == 4, cfg.key  # the seed tasks only
            db = {c.key: c.servers[0].log_path.read_text() for c in bench.configs}
        assert all("Traceback" not in text for text in db.values())
        assert stores.report(bench) == []
    finally:
        shutil.rmtree(logs, ignore_errors=True)
