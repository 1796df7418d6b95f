"""`mesh up`, Ctrl-C, `mesh up` again at once: the same ports, on free ones and on the
defaults a user types; a port another process really listens on is still refused."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from mesh.cli import main as mesh_main
from tests.loop.support import K8S
from tests.mesh.traffic import poll
from tests.support.mesh_up import READY
from tests.support.procs import VENV_BIN, free_port

pytestmark = pytest.mark.integration


def _serves(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _up(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, log.read_text()


def _until_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    poll(lambda: READY in log.read_text() or proc.poll() is not None, 90, "mesh up")
    assert proc.poll() is None, log.read_text()


def test_stop_and_start_again_at_once_on_the_same_fixed_ports(tmp_path: Path) -> None:
    gateway, admin, backend, frontend = free_port(), free_port(), free_port(), free_port()
    argv = [str(VENV_BIN / "mesh"), "up", str(K8S), "--quiet", "--no-traces"]
    argv += ["--state-dir", str(tmp_path / "state"), "--gateway-port", str(gateway)]
    argv += ["--admin-port", str(admin), "--backend-port", str(backend)]
    argv += ["--service-port", f"frontend-service={frontend}"]
    url = f"http://127.0.0.1:{gateway}/api/tasks"
    first = _up(argv, tmp_path / "first.log", tmp_path)
    client = httpx.Client(timeout=10)
    try:
        # the state file is there as soon as the gateway serves: scripts can go on at once
        poll(lambda: _serves(url) or first.poll() is not None, 90, "the gateway")
        assert mesh_main(["status", "--state-dir", str(tmp_path / "state")]) == 0
        for _ in range(20):
            assert client.get(url).status_code == 200
        _until_ready(first, tmp_path / "first.log")
    finally:
        # stopped with the client's connection open: Envoy closes it, so the gateway
        # port's side of it sits in TIME_WAIT, as after Ctrl-C on a browsed `make run`
        _stop(first, tmp_path / "first.log")
        client.close()
    second = _up(argv, tmp_path / "second.log", tmp_path)
    try:
        _until_ready(second, tmp_path / "second.log")
        assert _serves(url)
    finally:
        _stop(second, tmp_path / "second.log")


def test_a_port_really_in_use_is_refused_with_its_owner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = [str(VENV_BIN / "mesh"), "up", str(K8S), "--quiet", "--no-traces"]
        argv += ["--state-dir", str(tmp_path / "state"), "--gateway-port", str(port)]
        argv += ["--admin-port", str(free_port()), "--backend-port", str(free_port())]
        argv += ["--service-port", f"frontend-service={free_port()}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"port {port} (gateway port 80) is in use on 127.0.0.1 by pid " in proc.stderr
    assert "(python" in proc.stderr  # this test's own process holds it


def test_make_run_stop_and_run_again_on_the_default_ports(tmp_path: Path) -> None:
    """The user's own path: `mesh up k8s` on 8080 / 5000 / 8000 / 15000, Ctrl-C, again."""
    argv = [str(VENV_BIN / "mesh"), "up", str(K8S), "--quiet"]
    for attempt in ("first", "second"):
        log = tmp_path / f"{attempt}.log"
        proc = _up(argv, log, tmp_path)
        try:
            _until_ready(proc, log)
            r = httpx.get("http://127.0.0.1:8080/api/tasks", headers={"x-canary": "true"})
            assert r.json()["backend"]["version"] == "v2"
            assert _serves("http://127.0.0.1:5000/api/tasks")
        finally:
            _stop(proc, log)
