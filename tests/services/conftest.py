"""Real backend v1, backend v2 and frontend processes, started by their console entry points."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import Proc, running, wait_http_ok
from tests.support.procs import start_backend as launch_backend
from tests.support.procs import start_frontend as launch_frontend

from .otlp_receiver import Receiver, otlp_receiver

#: What Kubernetes injects for the Service backend-service; the services must ignore it.
SERVICE_LINKS = {
    "BACKEND_SERVICE_PORT": "tcp://10.0.0.1:5000",
    "BACKEND_SERVICE_HOST": "10.0.0.1",
    "FRONTEND_SERVICE_PORT": "tcp://10.0.0.2:8000",
}


def start_backend(version: str, db: Path, log_dir: Path, index: int = 0, **env: str) -> Proc:
    """Backend VERSION on DB, ready, with the Service links Kubernetes would inject."""
    name = f"backend-{version}-{index}"
    proc = launch_backend(version, db, log_dir, name, **{**SERVICE_LINKS, **env})
    wait_http_ok(proc)
    return proc


def start_frontend(backend_url: str, log_dir: Path, **env: str) -> Proc:
    """Frontend frontend-0 calling BACKEND_URL, ready, with the Service links Kubernetes
    would inject."""
    proc = launch_frontend(backend_url, log_dir, "frontend-0", **{**SERVICE_LINKS, **env})
    wait_http_ok(proc)
    return proc


@dataclass
class Services:
    v1: Proc
    v2: Proc
    frontend: Proc
    db: Path
    otlp: Receiver


@pytest.fixture(scope="module", name="services")
def _services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """v1 and v2 on one store, the frontend calling v2, all exporting spans over OTLP."""
    tmp = tmp_path_factory.mktemp("services")
    db = tmp / "data" / "tasks.db"
    logs = tmp / "logs"
    with otlp_receiver() as otlp:
        tracing = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        procs: list[Proc] = []
        with running(procs):
            procs.append(start_backend("v1", db, logs, **tracing))
            procs.append(start_backend("v2", db, logs, **tracing))
            procs.append(start_frontend(procs[1].url, logs, **tracing))
            yield Services(procs[0], procs[1], procs[2], db, otlp)
