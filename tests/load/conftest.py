from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import VENV_BIN, Proc, free_port, start, wait_http_ok

HERE = Path(__file__).parent
_unique = itertools.count()


def _serve(app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    port = free_port()
    argv = [
        str(VENV_BIN / "python"), "-m", "uvicorn", "--app-dir", str(HERE), app,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    name = app.partition(":")[0]
    proc = start(name, argv, tmp_path_factory.mktemp(name), port=port)
    try:
        wait_http_ok(proc, "/readyz")
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """The known-behaviour server of target_app.py, as a real uvicorn process."""
    yield from _serve("target_app:app", tmp_path_factory)


@pytest.fixture
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A fresh stand-in mesh (standin_mesh.py) per test: its counters start at zero."""
    yield from _serve("standin_mesh:app", tmp_path_factory)


@pytest.fixture
def path_for() -> Callable[[str], str]:
    """A fresh path under a behaviour prefix, so calls counted per path are this test's."""
    return lambda prefix: f"/{prefix}-{next(_unique)}"


@pytest.fixture
def server_calls(target: Proc) -> Callable[[str], int]:
    """How many calls the target got on a path: its own count, not the load tool's."""

    def count(path: str) -> int:
        r = httpx.get(f"{target.url}/count", params={"path": path}, trust_env=False)
        return int(r.json()["calls"])

    return count
