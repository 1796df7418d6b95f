"""compose/postgres.yml over docker-compose.yml: PostgreSQL instead of the SQLite volume,
read as Docker would (`docker-compose config`, no engine), with the password only from
the environment or the variant's generated env file."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from backend.dburl import PostgresUrl, parse_tasks_db
from tests.docker.tools import ROOT, tool

OVERRIDE = ROOT / "compose" / "postgres.yml"
ENV_FILE = ROOT / "k8s" / "variants" / "postgres" / "postgres.env"
BACKENDS = ("backend-v1-0", "backend-v1-1", "backend-v2-0")


def config(
    *files: str, env_file: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    argv = [tool("docker-compose")]
    argv += ["--env-file", env_file] if env_file else []
    for name in files:
        argv += ["-f", str(ROOT / name)]
    clean = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    return subprocess.run(
        [*argv, "config", "--format", "json"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def services(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_backends_use_postgres_and_wait_for_its_health_check() -> None:
    both = services(config("docker-compose.yml", "compose/postgres.yml", POSTGRES_PASSWORD="pw1"))
    for name in BACKENDS:
        env = both[name]["environment"]
        assert isinstance(parse_tasks_db(env["TASKS_DB"]), PostgresUrl)
        assert "pw1" not in env["TASKS_DB"] and env["PGPASSWORD"] == "pw1"
        assert not both[name].get("volumes")  # no shared SQLite file any more
        assert both[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    db = both["postgres"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert db["environment"]["POSTGRES_PASSWORD"] == "pw1"
    assert db["read_only"] and db["cap_drop"] == ["ALL"] and not db.get("ports")


def test_the_same_curl_lines_work_the_gateway_is_unchanged() -> None:
    alone = services(config("docker-compose.yml"))
    both = services(config("docker-compose.yml", "compose/postgres.yml", POSTGRES_PASSWORD="x"))
    assert both["gateway"] == alone["gateway"] and both["frontend"] == alone["frontend"]
    assert set(both) == set(alone) | {"postgres"}


def test_the_password_comes_from_the_generated_env_file_or_stops_compose() -> None:
    missing = config("docker-compose.yml", "compose/postgres.yml")
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD" in missing.stderr
    from_file = services(
        config("docker-compose.yml", "compose/postgres.yml", env_file=str(ENV_FILE))
    )
    password = ENV_FILE.read_text().strip().split("=", 1)[1]
    assert from_file["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    assert password not in OVERRIDE.read_text()
