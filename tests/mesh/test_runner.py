"""mesh.runner: planning the processes, and start-up failures that leave nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.errors import RunnerError, StateError
from mesh.loop.startup import stop_leftovers as _stop_leftovers
from mesh.loop.workloads import blueprint, rewrite_urls
from mesh.manifests import load
from mesh.runner import LocalMesh
from mesh.state import check_no_running_mesh, read_state
from tests.mesh.support import K8S
from tests.support.mesh import new_mesh
from tests.support.mesh_up import mesh_up
from tests.support.procs import VENV_BIN, free_port, start, wait_http_ok


def listeners() -> dict[tuple[str, int], int]:
    return {("backend-service", 5000): 15500, ("frontend-service", 8000): 15800}


def test_each_replica_runs_with_the_deployment_env(tmp_path: Path) -> None:
    m = load(K8S)
    dbs = set()
    for n, d in enumerate(m.deployments):
        bp = blueprint(d, m, listeners(), tmp_path)
        image_kind = "backend" if "backend" in bp.template.image else "frontend"
        assert Path(bp.template.argv[0]).name == image_kind
        for i, name in enumerate(d.instance_names()):
            env = bp.pod_env(name, 30000 + 10 * n + i)
            assert env["INSTANCE_NAME"] == name
            assert env["HOST"] == "127.0.0.1"
            assert env["PORT"] == str(30000 + 10 * n + i)
            if image_kind == "backend":
                dbs.add(env["TASKS_DB"])
            else:
                assert env["BACKEND_URL"] == "http://127.0.0.1:15500"
    assert dbs == {str((tmp_path / "tasks.db").resolve())}  # one shared store


def test_a_changed_pod_template_changes_the_digest_and_a_replica_count_does_not(
    tmp_path: Path,
) -> None:
    m = load(K8S)
    d = next(x for x in m.deployments if x.name == "backend-v1")
    before = blueprint(d, m, listeners(), tmp_path).template.digest
    d.raw["spec"]["replicas"] = 5
    assert blueprint(d, m, listeners(), tmp_path).template.digest == before
    d.raw["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "v9"
    assert blueprint(d, m, listeners(), tmp_path).template.digest != before
    moved = {**listeners(), ("backend-service", 5000): 15501}
    f = next(x for x in m.deployments if x.name == "frontend")
    assert (
        blueprint(f, m, moved, tmp_path).template.digest
        != blueprint(f, m, listeners(), tmp_path).template.digest
    )  # BACKEND_URL follows the listener: a new process


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://backend-service:5000", "http://127.0.0.1:15500"),
        ("http://backend-service.default.svc.cluster.local:5000/x", "http://127.0.0.1:15500/x"),
        ("http://backend-service:5001", "http://backend-service:5001"),
        ("http://example.com:5000", "http://example.com:5000"),
        ("plain text", "plain text"),
    ],
)
def test_service_urls_point_at_the_local_listener(value: str, expected: str) -> None:
    assert rewrite_urls(value, load(K8S), "default", listeners()) == expected


def copy_k8s(tmp_path: Path, file: str, edit) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "k8s"
    shutil.copytree(K8S, target, ignore=shutil.ignore_patterns("variants"))
    path = target / file
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    return target


def test_unknown_image_is_refused_before_anything_starts(tmp_path: Path) -> None:
    def edit(doc: dict) -> None:
        doc["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"

    directory = copy_k8s(tmp_path, "deployments/frontend.yaml", edit)
    mesh = new_mesh(directory, tmp_path / "state")
    with pytest.raises(RunnerError, match=r"frontend.yaml: Deployment/frontend: .*'nginx:1.27'"):
        mesh.__enter__()
    assert mesh.children == []


@pytest.mark.integration
def test_port_in_use_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mesh = LocalMesh(K8S, gateway_port=port, admin_port=free_port(), state_dir=tmp_path)
        with pytest.raises(RunnerError) as err:
            mesh.__enter__()
    assert f"port {port} (gateway port 80) is in use" in str(err.value)
    assert mesh.children == []


@pytest.mark.integration
def test_child_dying_at_start_reports_its_log_and_stops_the_rest(tmp_path: Path) -> None:
    def edit(doc: dict) -> None:
        env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == "APP_VERSION")["value"] = "v9"

    directory = copy_k8s(tmp_path, "deployments/backend-v2.yaml", edit)
    mesh = new_mesh(directory, tmp_path / "state")
    with pytest.raises(RunnerError) as err:
        mesh.__enter__()
    message = str(err.value)
    assert message.startswith("backend-v2-0 exited with status")
    assert "APP_VERSION" in message  # the child's own last lines
    assert mesh.children and all(c.popen.returncode is not None for c in mesh.children)
    assert not (tmp_path / "state" / "mesh.json").exists()


@pytest.mark.integration
def test_missing_envoy_binary_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVOY_BIN", str(tmp_path / "no-envoy"))
    mesh = new_mesh(K8S, tmp_path / "state")
    with pytest.raises(RunnerError, match="no Envoy binary"):
        mesh.__enter__()
    assert mesh.children == []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_mesh_up_stops_every_process_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    with mesh_up(K8S, tmp_path) as up:
        state = read_state(up.state_dir)
        pids = [i.pid for i in state.instances] + [state.envoy_pid]
        assert all(not _gone(pid) for pid in pids)
        up.proc.send_signal(sig)
        assert up.proc.wait(timeout=30) == 0, up.output()
    assert all(_gone(pid) for pid in pids), up.output()
    assert not (up.state_dir / "mesh.json").exists()
    text = up.output()
    assert "curl -s -H 'x-canary: true' http://127.0.0.1:" in text
    assert "mesh up: stopped" in text


def _state_file(state_dir: Path, pid: int, children: list[int]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    instances = [
        {"name": f"backend-v1-{n}", "deployment": "backend-v1", "image": "i", "port": 1, "pid": p}
        for n, p in enumerate(children)
    ]
    (state_dir / "mesh.json").write_text(
        json.dumps(
            {
                "pid": pid,
                "manifests": "k8s",
                "admin_url": "http://127.0.0.1:1",
                "gateway_urls": [],
                "service_urls": {},
                "envoy_pid": children[0],
                "instances": instances,
            }
        )
    )


def test_a_state_dir_in_use_by_a_running_mesh_is_refused(tmp_path: Path) -> None:
    _state_file(tmp_path, pid=1, children=[1])  # pid 1 is alive
    with pytest.raises(StateError, match="a mesh is already running"):
        check_no_running_mesh(tmp_path)


@pytest.mark.integration
def test_processes_left_by_a_killed_mesh_are_stopped(tmp_path: Path) -> None:
    gone_pid = subprocess.Popen(["true"])
    gone_pid.wait()
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "TASKS_DB": str(tmp_path / "t.db")}
    proc = start("leftover", [str(VENV_BIN / "backend")], tmp_path / "logs", env, port)
    leftover = proc.popen
    wait_http_ok(proc)  # running for real, as a leftover would be
    try:
        _state_file(tmp_path / "state", pid=gone_pid.pid, children=[leftover.pid])
        assert check_no_running_mesh(tmp_path / "state") == [leftover.pid]
        _stop_leftovers(tmp_path / "state")
        assert leftover.wait(timeout=10) != 0
        assert not (tmp_path / "state" / "mesh.json").exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
