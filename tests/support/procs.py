"""Real processes on loopback for tests: free ports, readiness, clean teardown.

Tests wait on readiness (an HTTP 200), never on time. Every process is started
in its own process group and killed with it, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backend.dburl import PostgresUrl, StoreLocation
from mesh.processes import free_port as mesh_free_port

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, outside the ephemeral range (see
    mesh.processes.free_port: no client connection takes it before a server binds it)."""
    return mesh_free_port()


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)


def start(
    name: str,
    argv: list[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Proc:
    """Start argv in its own process group, output to LOG_DIR/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            argv, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name=name, popen=popen, log_path=log_path, port=port)


def start_backend(version: str, db: StoreLocation, log_dir: Path, name: str, **env: str) -> Proc:
    """A real backend process (its console entry point) on 127.0.0.1 at a free port: VERSION
    as instance NAME on the task store DB, ENV added to (or overriding) that environment.

    Not waited for, so that replicas can start together; wait with wait_http_ok. One
    place for the backend's argv and environment, which the tests that start backends
    (tests/services, tests/backend/test_store_processes.py, tests/page) would otherwise
    each spell."""
    return _start_service(
        "backend",
        name,
        log_dir,
        {
            "APP_VERSION": version,
            "INSTANCE_NAME": name,
            "TASKS_DB": db.url if isinstance(db, PostgresUrl) else str(db),  # str() redacts
            **env,
        },
    )


def start_frontend(backend_url: str, log_dir: Path, name: str, **env: str) -> Proc:
    """A real frontend process (its console entry point) on 127.0.0.1 at a free port: instance
    NAME calling the backend at BACKEND_URL, ENV added to (or overriding) that environment.

    Not waited for, as start_backend; wait with wait_http_ok. One place for the frontend's
    argv and environment, which tests/services and tests/page would otherwise each spell."""
    return _start_service(
        "frontend", name, log_dir, {"INSTANCE_NAME": name, "BACKEND_URL": backend_url, **env}
    )


def _start_service(entry_point: str, name: str, log_dir: Path, env: dict[str, str]) -> Proc:
    """ENTRY_POINT (a console script of this venv) as NAME on 127.0.0.1 at a free port, with
    ENV (which may override HOST or PORT) on top: what start_backend and start_frontend share."""
    port = free_port()
    return start(
        name,
        [str(VENV_BIN / entry_point)],
        log_dir,
        env={"HOST": "127.0.0.1", "PORT": str(port), **env},
        port=port,
    )


def wait_http_ok(proc: Proc, path: str = "/readyz", timeout: float = 30.0) -> None:
    """Poll until GET path answers 200; fail with the process log if it dies or never does."""
    deadline = time.monotonic() + timeout
    last: object = None
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}"
                )
            try:
                r = client.get(proc.url + path)
                if r.status_code == 200:
                    return
                last = r.status_code
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.02)  # poll interval while waiting for readiness, not a pass condition
    raise TimeoutError(f"{proc.name} not ready at {path} ({last}):\n{proc.log()[-3000:]}")


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()
