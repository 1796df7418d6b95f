"""`mesh restart`: replicas restart one at a time under steady load, no request fails."""

from __future__ import annotations

import pytest

from mesh.errors import RunnerError
from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh
from mesh.state import read_state

pytestmark = pytest.mark.integration


def pids(mesh: LocalMesh, deployment: str) -> dict[str, int]:
    return {
        w.name: w.pid or 0
        for w in mesh.workloads
        if w.deployment == deployment and not w.terminating
    }


def test_rolling_restart_of_backend_v1_under_load_fails_no_request(mesh: LocalMesh) -> None:
    before = pids(mesh, "backend-v1")
    steps: list[str] = []
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=4, qps=60) as load:
        restarted = mesh.restart("backend-v1", say=steps.append)
    result = load.result
    assert result is not None
    after = pids(mesh, "backend-v1")
    assert restarted == sorted(before)
    assert all(after[name] != before[name] for name in before), (before, after)
    # the state file names the new processes, so `mesh status` and `mesh fault` find them
    state = {i.name: i.pid for i in read_state(mesh.state_dir).instances}
    assert {n: state[n] for n in after} == after
    assert result.total > 0
    assert not result.errors, (result.errors, steps)
    assert set(result.status_counts) == {200}, (result.status_counts, steps)
    # both new replicas serve again
    assert any("Envoy's rotation" in s for s in steps)


def test_restart_of_an_unknown_deployment_names_the_known_ones(mesh: LocalMesh) -> None:
    with pytest.raises(RunnerError, match="backend-v1") as info:
        mesh.restart("backend-v9", say=lambda _: None)
    assert "backend-v9" in str(info.value)
