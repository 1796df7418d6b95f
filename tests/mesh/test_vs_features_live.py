"""VirtualService features on real Envoy: fault abort, route timeout, a missing subset."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.support import overlay, vs_patch
from tests.mesh.traffic import clear_fault, poll, set_fault

pytestmark = pytest.mark.integration

ABORT_STATUS = 418
# The route timeout must pass an ordinary call on a loaded machine and stop a delayed one.
ROUTE_TIMEOUT_S = 2
DELAY_MS = 6000
BACKEND = {"host": "backend-service"}


def rule(name: str, value: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "match": [{"headers": {"x-test": {"exact": value}}}],
        "route": [{"destination": {**BACKEND, "subset": "v1"}}],
        **extra,
    }


HTTP = [
    rule(
        "abort",
        "abort",
        fault={"abort": {"httpStatus": ABORT_STATUS, "percentage": {"value": 100}}},
    ),
    {
        **rule("slow", "slow", timeout=f"{ROUTE_TIMEOUT_S}s", retries={"attempts": 0}),
        "route": [{"destination": {**BACKEND, "subset": "v2"}}],
    },
    {**rule("missing", "missing"), "route": [{"destination": {**BACKEND, "subset": "v9"}}]},
    {"name": "stable", "route": [{"destination": {**BACKEND, "subset": "v1"}}]},
]


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory, tmp_path_factory: pytest.TempPathFactory) -> LocalMesh:
    """k8s/ with a VirtualService backend that has one rule per feature (by x-test)."""
    directory = overlay(tmp_path_factory.mktemp("vs") / "o", patches=[vs_patch("backend", HTTP)])
    return start_mesh(Path(directory))


def call(mesh: LocalMesh, test: str) -> httpx.Response:
    url = f"{mesh.service_url('backend-service')}/api/tasks"
    return httpx.get(url, headers={"x-test": test}, timeout=10.0)


def access_log_line(mesh: LocalMesh, route: str) -> str:
    found: list[str] = []

    def logged() -> bool:
        found[:] = [ln for ln in mesh.logs("envoy") if ln.endswith(f" {route}")]
        return bool(found)

    poll(logged, timeout=10, what=f"an access-log line for route {route}")
    return found[-1]


def test_fault_abort_answers_its_status_without_the_backend(mesh: LocalMesh) -> None:
    r = call(mesh, "abort")
    assert r.status_code == ABORT_STATUS
    assert "x-backend-version" not in r.headers
    assert f'" {ABORT_STATUS} FI ' in access_log_line(mesh, "abort")
    assert call(mesh, "other").status_code == 200


def test_route_timeout_shorter_than_the_backend_gives_504(mesh: LocalMesh) -> None:
    set_fault(mesh, "backend-v2-0", status=503, error_rate=0.0, delay_ms=DELAY_MS, delay_rate=1.0)
    try:
        r = call(mesh, "slow")
    finally:
        clear_fault(mesh, "backend-v2-0")
    assert r.status_code == 504
    assert '" 504 UT ' in access_log_line(mesh, "slow")
    assert call(mesh, "slow").status_code == 200  # no delay, no timeout


def test_route_to_an_undefined_subset_is_503_nc(mesh: LocalMesh) -> None:
    r = call(mesh, "missing")
    assert r.status_code == 503
    assert '" 503 NC ' in access_log_line(mesh, "missing")
