"""`mesh rollout` on `mesh up --sidecars`: the frontend's calls go through its own
sidecar, so a step's numbers are the sum of every Envoy's stats (mesh/rollout/metrics.py
`read`); the shared Envoy alone never sees them and would find "not enough traffic".
A real `mesh up --sidecars` process, a real rollout, as tests/rollout/test_rollout_live.py."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from mesh.state import read_state
from tests.loop.support import copy_k8s
from tests.mesh.traffic import versions
from tests.rollout.support import (
    FILES,
    ROLLOUT_TIMEOUT_S,
    SERVICE,
    Mesh,
    outcome_json,
    reset,
    wait_served,
)
from tests.support.mesh_up import mesh_up
from tests.support.procs import VENV_BIN

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


def test_a_caller_replaced_mid_step_is_still_read(mesh: Mesh) -> None:
    """`mesh restart frontend` during a step: the frontend's sidecar stops and a new
    replica's starts on another admin port. The rollout reads the Envoys that run now
    (the state file's list, read again at every read) and keeps what the stopped one
    counted; reading only the Envoys of its start, it met a dead admin and rolled back."""
    reset(mesh)
    before = set(read_state(mesh.up.state_dir).stats_urls)
    args = ("--to", "v2", "--steps", "100", "--interval", "30s", "--load", "40")
    proc = subprocess.Popen(
        mesh.argv(SERVICE, *args, "--min-requests", "5", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_served(mesh, {"v2": 100})  # the one step is under way
        restart = [str(VENV_BIN / "mesh"), "restart", "frontend"]
        subprocess.run([*restart, "--state-dir", str(mesh.up.state_dir)], check=True, timeout=120)
        assert proc.poll() is None, "the step ended before the restart did: nothing tested"
        out, err = proc.communicate(timeout=ROLLOUT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["result"] == "promoted", data
    assert data["steps"][0]["canary"]["requests"] >= 5
    now = set(read_state(mesh.up.state_dir).stats_urls)
    assert len(now - before) == 1 and len(before - now) == 1  # one sidecar replaced
    assert mesh.rollout(SERVICE, "--reset").returncode == 0
