"""`mesh up --sidecars` from the command line: a sidecar per instance, stopped with the rest."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import yaml

from tests.mesh.support import K8S
from tests.support.mesh_up import mesh_up

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
    with mesh_up(K8S, tmp_path, "--sidecars", "--no-traces") as up:
        admins = _admin_ports(up.state_dir)
        assert len(admins) == 4  # backend-v1 x2, backend-v2, frontend
        assert all(_answers(f"http://127.0.0.1:{p}/ready") for p in admins)
        # ready means routed: every sidecar's health checks already see every replica
        assert _answers(f"http://127.0.0.1:{up.gateway_port}/api/tasks")
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(timeout=30) == 0, up.output()
    assert not any(_answers(f"http://127.0.0.1:{p}/ready") for p in admins)
    text = up.output()
    assert "4 sidecars and the gateway ready" in text
    assert "mTLS STRICT, RBAC from AuthorizationPolicy" in text
    assert "not enforced locally: PeerAuthentication" not in text
    assert "not enforced locally: AuthorizationPolicy" not in text
    assert "not enforced locally: Telemetry" in text
