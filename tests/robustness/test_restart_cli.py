"""`mesh restart` against a running `mesh up` (which owns and restarts its children)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mesh.cli import main as mesh_main
from mesh.state import read_state
from tests.robustness.conftest import K8S
from tests.support.mesh_up import mesh_up as start_mesh_up


@pytest.fixture(scope="module", name="mesh_up")
def _mesh_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `mesh up` process on free ports; yields its state dir."""
    with start_mesh_up(K8S, tmp_path_factory.mktemp("mesh-up"), "--no-traces") as up:
        yield up.state_dir


@pytest.mark.integration
def test_mesh_restart_rolls_the_replicas_of_the_running_mesh(
    mesh_up: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {i.name: i.pid for i in read_state(mesh_up).instances}
    assert mesh_main(["restart", "backend-v1", "--state-dir", str(mesh_up)]) == 0
    out = capsys.readouterr().out
    state = read_state(mesh_up)  # the same mesh up process still runs
    after = {i.name: i.pid for i in state.instances}
    for name in ("backend-v1-0", "backend-v1-1"):
        assert after[name] != before[name]
        assert f"{name}: restarted (pid {after[name]}," in out
    for name in ("backend-v2-0", "frontend-0"):
        assert after[name] == before[name]
    reply = httpx.get(f"{state.gateway_urls[0]}/api/tasks", timeout=10)
    assert reply.status_code == 200
    assert not list((mesh_up / "control").iterdir())  # request and result cleaned up


@pytest.mark.integration
def test_mesh_restart_of_an_unknown_deployment_is_one_line(
    mesh_up: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh_main(["restart", "backend-v9", "--state-dir", str(mesh_up)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mesh restart: no Deployment 'backend-v9' in the running mesh (have: ")
    assert "backend-v1" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["restart", "backend-v1", "--state-dir", "{tmp}"], "mesh restart: no running mesh"),
        (
            ["restart", "backend-v1", "--state-dir", "{tmp}", "--timeout", "0"],
            "mesh restart: --timeout 0: must be more than 0 seconds",
        ),
    ],
)
def test_restart_user_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert mesh_main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1
