"""`mesh up --sidecars` from the command line: a sidecar per instance, stopped with the rest."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.mesh.support import K8S
from tests.support.procs import VENV_BIN, free_port

pytestmark = pytest.mark.integration


def _admin_ports(state_dir: Path) -> list[int]:
    configs = sorted((state_dir / "sidecars").glob("*.yaml"))
    return [
        yaml.safe_load(p.read_text())["admin"]["address"]["socket_address"]["port_value"]
        for p in configs
    ]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def test_mesh_up_sidecars_serves_and_stops_every_sidecar(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    gateway = free_port()
    argv = [str(VENV_BIN / "mesh"), "up", str(K8S), "--sidecars", "--quiet", "--no-traces"]
    argv += ["--state-dir", str(state_dir), "--gateway-port", str(gateway)]
    argv += ["--admin-port", str(free_port())]
    for name in ("backend-service", "frontend-service"):
        argv += ["--service-port", f"{name}={free_port()}"]
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "mesh.json").exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # poll for the state file, written once everything is ready
        admins = _admin_ports(state_dir)
        assert len(admins) == 4  # backend-v1 x2, backend-v2, frontend
        assert all(_answers(f"http://127.0.0.1:{p}/ready") for p in admins)
        # ready means routed: every sidecar's health checks already see every replica
        assert _answers(f"http://127.0.0.1:{gateway}/api/tasks")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not any(_answers(f"http://127.0.0.1:{p}/ready") for p in admins)
    text = log.read_text()
    assert "4 sidecars and the gateway ready" in text
    assert "mTLS STRICT, RBAC from AuthorizationPolicy" in text
    assert "not enforced locally: PeerAuthentication" not in text
    assert "not enforced locally: AuthorizationPolicy" not in text
    assert "not enforced locally: Telemetry" in text
