"""Schemathesis against the services' OpenAPI schemas: no 500s, replies match the schemas.

Each service runs as a real process on a free port (what the mesh runs); examples are
bounded and derandomized, so a run is the same every time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.procs import VENV_BIN, free_port, running, start, wait_http_ok

MAX_EXAMPLES = 50


@pytest.fixture(scope="module", name="backend_url")
def _backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "TASKS_DB": str(tmp / "tasks.db")}
    proc = start("backend", [str(VENV_BIN / "backend")], tmp, env, port)
    with running([proc]):
        wait_http_ok(proc)
        yield proc.url


@pytest.fixture(scope="module", name="backend_schema")
def _backend_schema(backend_url: str) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{backend_url}/openapi.json")


# the toggles would turn every later reply into a fault: tests/robustness/test_bad_input.py
backend = schemathesis.pytest.from_fixture("backend_schema").exclude(
    method="PUT", path_regex="^/admin/"
)


def fresh_idempotency_key(case: schemathesis.Case) -> None:
    """One key per generated request: reusing a key for another body is a 422 by design
    (tested in test_nothing_lost), not a schema-valid request wrongly refused."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


@pytest.mark.integration
@backend.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_backend_api(case: schemathesis.Case) -> None:
    fresh_idempotency_key(case)
    case.call_and_validate()


# -- the frontend: its /api/* is the backend's, passed through with `backend` added, so
# its schema is the backend's /api/* paths (the frontend publishes no OpenAPI itself).


@pytest.fixture(scope="module", name="frontend_url")
def _frontend_url(tmp_path_factory: pytest.TempPathFactory, backend_url: str) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis-frontend")
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "BACKEND_URL": backend_url}
    proc = start("frontend", [str(VENV_BIN / "frontend")], tmp, env, port)
    with running([proc]):
        wait_http_ok(proc)
        yield proc.url


@pytest.fixture(scope="module", name="frontend_schema")
def _frontend_schema(backend_url: str) -> schemathesis.schemas.BaseSchema:
    spec = httpx.get(f"{backend_url}/openapi.json", timeout=10).json()
    spec["paths"] = {p: ops for p, ops in spec["paths"].items() if p.startswith("/api/")}
    return schemathesis.openapi.from_dict(spec)


frontend = schemathesis.pytest.from_fixture("frontend_schema")


@pytest.mark.integration
@frontend.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_frontend_api(case: schemathesis.Case, frontend_url: str) -> None:
    fresh_idempotency_key(case)
    case.call_and_validate(base_url=frontend_url)
