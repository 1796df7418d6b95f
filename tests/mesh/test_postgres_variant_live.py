"""`mesh up k8s/variants/postgres`: the PostgreSQL StatefulSet as a local server, the
backends' store reached through Envoy's tcp_proxy as istiod builds it, data kept
under the state dir across a restart of the whole mesh."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.mesh_up import mesh_up
from tests.support.postgres import scratch_dir
from tests.support.procs import VENV_BIN, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VARIANT = ROOT / "k8s" / "variants" / "postgres"
CLUSTER = "outbound|5432||postgres.default.svc.cluster.local"


def _admin(output: str) -> str:
    found = re.search(r"admin\s+(http://127\.0\.0\.1:\d+)/", output)
    assert found, output
    return found.group(1)


def _tcp_pool() -> dict[str, Any]:
    doc = yaml.safe_load((VARIANT / "destinationrule-postgres.yaml").read_text())
    return doc["spec"]["trafficPolicy"]["connectionPool"]["tcp"]


def _config(admin: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the postgres cluster, the filter chains of its outbound listener) from Envoy."""
    dump = httpx.get(f"{admin}/config_dump", timeout=10).json()
    cluster: dict[str, Any] = {}
    chains: dict[str, Any] = {}
    for config in dump["configs"]:
        for entry in config.get("dynamic_active_clusters", []) + config.get("static_clusters", []):
            if entry["cluster"]["name"] == CLUSTER:
                cluster = entry["cluster"]
        for entry in config.get("dynamic_listeners", []) + config.get("static_listeners", []):
            listener = (entry.get("active_state") or {}).get("listener") or entry.get("listener")
            if listener and listener["name"].endswith("postgres.default.svc.cluster.local:5432"):
                chains = {"filter_chains": listener["filter_chains"]}
    return cluster, chains


def _upstream_connections(admin: str) -> int:
    stats = httpx.get(f"{admin}/stats", params={"filter": re.escape(CLUSTER)}, timeout=10).text
    found = re.search(rf"cluster\.{re.escape(CLUSTER)}\.upstream_cx_total: (\d+)", stats)
    return int(found.group(1)) if found else 0


def test_the_store_goes_through_envoy_tcp_proxy_and_survives_a_restart() -> None:
    work = scratch_dir("mesh-pg-")  # the server runs as nobody when root: a reachable dir
    title = f"kept in postgres {uuid.uuid4().hex[:8]}"
    options = ("--no-traces", "--service-port", f"postgres={free_port()}")
    try:
        with mesh_up(VARIANT, work, *options, timeout=120) as up:
            gateway = f"http://127.0.0.1:{up.gateway_port}"
            admin = _admin(up.output())
            created = httpx.post(f"{gateway}/api/tasks", json={"title": title}, timeout=30)
            assert created.status_code == 201, created.text
            canary = httpx.get(f"{gateway}/api/tasks", headers={"x-canary": "true"}, timeout=30)
            assert title in [t["title"] for t in canary.json()["tasks"]]  # v2 reads v1's write

            cluster, listener = _config(admin)
            pool = _tcp_pool()
            proxy = listener["filter_chains"][0]["filters"]
            assert [f["name"] for f in proxy] == ["envoy.filters.network.tcp_proxy"]
            assert proxy[0]["typed_config"]["cluster"] == CLUSTER
            assert proxy[0]["typed_config"]["stat_prefix"] == CLUSTER
            thresholds = cluster["circuit_breakers"]["thresholds"][0]
            assert thresholds["max_connections"] == pool["maxConnections"]
            assert cluster["connect_timeout"] == pool["connectTimeout"]
            assert "typed_extension_protocol_options" not in cluster  # bytes, not HTTP
            assert _upstream_connections(admin) > 0  # the backends' connections crossed Envoy
            assert "postgres:5432 -> tcp://127.0.0.1:" in up.output()
        assert (work / "state" / "postgres" / "postgres-0" / "PG_VERSION").is_file()

        with mesh_up(VARIANT, work, *options, timeout=120) as again:
            listed = httpx.get(f"http://127.0.0.1:{again.gateway_port}/api/tasks", timeout=30)
            titles = [t["title"] for t in listed.json()["tasks"]]
            assert titles.count(title) == 1
            assert len(titles) >= 5  # the four seed tasks once, not re-seeded
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_sidecars_refuse_a_tcp_port_by_name() -> None:
    work = scratch_dir("mesh-pg-sidecars-")
    try:
        done = subprocess.run(
            [str(VENV_BIN / "mesh"), "up", str(VARIANT), "--sidecars", "--no-traces",
             "--state-dir", str(work / "state"), "--gateway-port", str(free_port()),
             "--admin-port", str(free_port()), "--service-port", f"postgres={free_port()}",
             "--service-port", f"backend-service={free_port()}",
             "--service-port", f"frontend-service={free_port()}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode != 0
    assert (
        "Service/postgres: spec.ports[0].appProtocol: a TCP port runs only without --sidecars"
        in done.stderr + done.stdout
    )
