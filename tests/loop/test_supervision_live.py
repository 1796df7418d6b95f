"""The local kubelet: a replica or Envoy that dies comes back; liveness restarts; status."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from mesh.cli import main as mesh_main
from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh
from tests.loop.support import edit_yaml, versions
from tests.mesh.traffic import poll
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration


def test_a_killed_replica_comes_back_while_the_other_serves(mesh: LocalMesh) -> None:
    pod = mesh.pod("backend-v1-0")
    old_pid = pod.pid
    assert old_pid is not None
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=4, qps=80) as load:
        os.killpg(old_pid, signal.SIGKILL)
        assert mesh.kubelet.wait_for(lambda: pod.restarts == 1 and pod.ready, timeout=60), (
            pod.state,
            pod.last_exit,
        )
        assert mesh.rotation.available(pod, 60)
    result = load.result
    assert result is not None and result.total > 0
    failed = result.total - result.status_counts[200]
    # the mesh's retries (connect-failure, reset) hide the kill; 99% is the bar
    assert failed <= result.total * 0.01, (result.status_counts, result.errors)
    assert pod.pid != old_pid and pod.last_exit == "exit -9 (SIGKILL)"
    assert versions(f"{mesh.service_url('backend-service')}/api/tasks", 20) == {"v1": 20}


def test_status_and_events_say_what_the_kubelet_did(
    mesh: LocalMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = mesh.pod("backend-v2-0")
    assert pod.child is not None
    pod.child.signal(signal.SIGTERM)
    assert mesh.kubelet.wait_for(lambda: pod.restarts == 1 and pod.ready, timeout=60)
    state_dir = ["--state-dir", str(mesh.state_dir)]
    seen: dict = {}

    def status_says_restarted() -> bool:
        # the state file `mesh status` reads is written just after the pod turns ready
        assert mesh_main(["status", "--json", *state_dir]) == 0
        seen["status"] = json.loads(capsys.readouterr().out)
        row = next(w for w in seen["status"]["workloads"] if w["name"] == "backend-v2-0")
        seen["row"] = row
        return row["restarts"] == 1 and row["ready"] is True

    poll(status_says_restarted, 30, "mesh status to show the restart")
    status, row = seen["status"], seen["row"]
    assert {k: row[k] for k in ("state", "ready", "restarts", "last_exit", "pid")} == {
        "state": "ready",
        "ready": True,
        "restarts": 1,
        "last_exit": "exit -15 (SIGTERM)",
        "pid": pod.pid,
    }
    assert {"name", "deployment", "port"} <= set(row)
    assert status["config"]["generation"] == 1 and status["config"]["refused"] is None
    assert len(status["config"]["digest"]) == 12
    assert mesh_main(["status", *state_dir]) == 0
    table = capsys.readouterr().out
    assert "config generation 1 applied" in table
    assert any(
        line.split()[:1] == ["backend-v2-0"] and "exit -15 (SIGTERM)" in line and " 1 " in line
        for line in table.splitlines()
    ), table
    assert mesh_main(["events", *state_dir]) == 0
    events = capsys.readouterr().out
    assert "Restarted" in events and "backend-v2-0" in events and "exit -15" in events


def test_a_failing_liveness_probe_restarts_the_replica(tmp_path: Path, tree: Path) -> None:
    def fast_liveness(doc: dict) -> None:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        container["livenessProbe"].update({"periodSeconds": 1, "failureThreshold": 2})
        # a tight liveness probe needs a startupProbe (as in Kubernetes): a slow start on
        # a busy machine must not count as a failure
        container["startupProbe"] = {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 120,
        }

    edit_yaml(tree / "deployments" / "backend-v2.yaml", fast_liveness)
    with new_mesh(tree, tmp_path / "state") as mesh:
        pod = mesh.pod("backend-v2-0")
        r = httpx.put(f"{pod.url}/admin/live", json={"live": False}, timeout=5)
        assert r.status_code == 200
        assert mesh.kubelet.wait_for(lambda: pod.restarts == 1 and pod.ready, timeout=60), (
            pod.state,
            pod.last_exit,
        )
        assert pod.last_exit is not None and pod.last_exit.startswith("liveness probe failed")
        # a new process: its own toggle is back on, and it serves the canary again
        assert httpx.get(f"{pod.url}/healthz", timeout=5).status_code == 200
        assert mesh.rotation.available(pod, 60)
        r = httpx.get(f"{mesh.gateway_url}/api/tasks", headers={"x-canary": "true"}, timeout=10)
        assert r.status_code == 200 and r.json()["backend"]["version"] == "v2"
        reasons = [(e.reason, e.object) for e in mesh.events.recent()]
        assert ("Unhealthy", "backend-v2-0") in reasons and ("Restarted", "backend-v2-0") in reasons


def test_a_killed_envoy_is_restarted_with_the_config_in_force(mesh: LocalMesh) -> None:
    proc = next(p for p in mesh.kubelet.system if p.name == "envoy")
    assert proc.child is not None
    old = proc.pid
    proc.child.signal(signal.SIGKILL)
    assert mesh.kubelet.wait_for(lambda: proc.restarts == 1, timeout=60)
    assert proc.pid != old

    def serves() -> bool:
        try:
            return httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    poll(serves, 60, "the gateway to serve through the new Envoy")
    r = httpx.get(f"{mesh.gateway_url}/api/tasks", headers={"x-canary": "true"}, timeout=10)
    assert r.json()["backend"]["version"] == "v2"
