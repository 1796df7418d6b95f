"""`mesh rollout` on `mesh up --sidecars`: the frontend's calls go through its own
sidecar, so a step's numbers are the sum of every Envoy's stats (mesh/rollout/metrics.py
`read`); the shared Envoy alone never sees them and would find "not enough traffic".
A real `mesh up --sidecars` process, a real rollout, as tests/rollout/test_rollout_live.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesh.state import read_state
from tests.loop.support import copy_k8s
from tests.mesh.traffic import versions
from tests.rollout.support import FILES, SERVICE, Mesh, outcome_json, reset
from tests.support.mesh_up import mesh_up

pytestmark = pytest.mark.integration

FAST = ("--interval", "2s", "--load", "40", "--min-requests", "5")


@pytest.fixture(name="mesh", scope="module")
def _mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("rollout-sidecars")
    with mesh_up(copy_k8s(work), work, "--sidecars", "--no-traces") as running:
        yield Mesh(running)


def test_the_state_file_lists_every_envoys_admin(mesh: Mesh) -> None:
    state = read_state(mesh.up.state_dir)
    assert state.stats_urls[0] == state.admin_url
    assert len(state.stats_urls) == 5  # the shared Envoy and 4 sidecars


def test_a_healthy_canary_is_promoted_on_the_sidecars_numbers(mesh: Mesh) -> None:
    reset(mesh)
    done = mesh.rollout(SERVICE, "--to", "v2", "--steps", "50,100", *FAST, "--json")
    assert done.returncode == 0, done.stderr
    data = outcome_json(done)
    assert data["result"] == "promoted", data
    assert [s["verdict"] for s in data["steps"]] == ["pass", "pass"]
    last = data["steps"][-1]
    assert last["canary"]["requests"] >= 5 and last["canary"]["p99_ms"] is not None
    assert mesh.served() == {"v2": 100}
    # the frontend's own sidecar routes as the promotion says
    gateway = read_state(mesh.up.state_dir).gateway_urls[0]
    assert versions(gateway + "/api/tasks", 20) == {"v2": 20}
    assert mesh.rollout(SERVICE, "--reset").returncode == 0
    assert mesh.served() == FILES
