"""`mesh proxy-status` against real Envoys: every one SYNCED once the mesh is up, and an
xDS file Envoy refuses shows as STALE until a good one is back (istioctl proxy-status's
SYNCED / STALE, from what was written and what the Envoy reports it runs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mesh import admin
from mesh.loop.endpoints import write_atomically
from mesh.runner import LocalMesh
from tests.mesh.traffic import poll

pytestmark = pytest.mark.integration

MESH = str(Path(sys.executable).parent / "mesh")


@pytest.fixture(scope="module", name="mesh")
def _mesh(sidecar_mesh: LocalMesh) -> LocalMesh:
    return sidecar_mesh  # the sidecar mesh of tests/conftest.py


def proxy_status(mesh: LocalMesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MESH, "proxy-status", *args, "--state-dir", str(mesh.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def sidecar_admin(mesh: LocalMesh) -> str:
    assert mesh.sidecar_setup is not None
    return next(s.admin_url for s in mesh.sidecar_setup.sidecars if s.instance == "frontend-0")


def rows(mesh: LocalMesh, *args: str) -> dict[str, list[str]]:
    done = proxy_status(mesh, *args)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]  # `SYNCED (3s)` is one
    return {c[0]: c for c in cells} | {"": re.split(r"\s{2,}", header.strip())}


def statuses(cells: list[str]) -> list[str]:
    """The -v 1 status cells without their age: `SYNCED (3s)` -> `SYNCED`."""
    return [re.sub(r" \(\d+[smhdy]\w*\)$", "", c) for c in cells[2:7]]


def test_every_envoy_is_listed_and_synced(mesh: LocalMesh) -> None:
    assert mesh.sidecar_setup is not None
    names = {f"{s.instance}.default" for s in mesh.sidecar_setup.sidecars}
    plain = rows(mesh)
    assert plain.pop("") == ["NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED TYPES"]
    assert set(plain) == names | {"istio-ingressgateway.istio-system"}
    for cells in plain.values():
        assert cells[1] == "Kubernetes" and cells[2] == f"mesh-up-{os.getpid()}", cells
        assert re.fullmatch(r"\d+\.\d+\.\d+", cells[3]), cells
        assert cells[4:] == ["4 (CDS,LDS,EDS,RDS)"], cells
    verbose = rows(mesh, "-v", "1")
    header = ["NAME", "CLUSTER", "CDS", "ECDS", "EDS", "LDS", "RDS", "ISTIOD", "VERSION"]
    assert verbose.pop("") == header
    for cells in verbose.values():
        assert statuses(cells) == ["SYNCED", "IGNORED", "SYNCED", "SYNCED", "SYNCED"], cells
        # each sent type says how long ago it was pushed, as istiod's LastUpdated
        assert all(re.fullmatch(r"SYNCED \(\d+s\)", c) for c in cells[2:7] if c != "IGNORED")


def test_a_refused_route_file_is_stale_until_a_good_one_is_back(mesh: LocalMesh) -> None:
    done = proxy_status(mesh, "frontend-0", "-o", "json")
    assert done.returncode == 0, done.stderr
    (frontend,) = json.loads(done.stdout)
    assert frontend["proxy"] == "frontend-0.default"
    route, versions = next(iter(frontend["types"]["RDS"]["resources"].items()))
    assert versions["sent"] == versions["acked"]
    path = next(
        p
        for p in (mesh.state_dir / "sidecars" / "xds" / "frontend-0" / "rds").iterdir()
        if json.loads(p.read_text())["resources"][0]["name"] == route
    )
    good = path.read_text()
    bad = json.loads(good)
    bad["version_info"] = "refused-1"
    bad["resources"][0]["virtual_hosts"] = [{"name": "dup", "domains": ["*"]}] * 2

    def refusals() -> int:
        found = admin.stats(sidecar_admin(mesh), "http.")
        return sum(
            v
            for k, v in found.items()
            if k.endswith(".rds." + stat_name(route) + ".update_rejected")
        )

    def stale() -> bool:
        return statuses(rows(mesh, "-v", "1")["frontend-0.default"])[4] == "STALE"

    before = refusals()
    try:
        write_atomically(path, bad)  # two virtual hosts of one name: Envoy refuses it
        poll(lambda: refusals() > before, 30.0, "Envoy to refuse the route file")
        assert stale()
        again = json.loads(proxy_status(mesh, "frontend-0", "-o", "json").stdout)[0]
        seen = again["types"]["RDS"]["resources"][route]
        assert seen == {"sent": "refused-1", "acked": versions["acked"]}
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert again["types"]["RDS"]["last_updated"] >= written, again["types"]["RDS"]
        # one proxy's diff: the route table as sent against the one Envoy kept running
        diff = proxy_status(mesh, "frontend-0")
        assert diff.returncode == 0, diff.stderr
        lines = diff.stdout.splitlines()
        assert lines[:2] == ["Clusters Match", "Listeners Match"], lines[:3]
        assert lines[2].startswith("Routes Don't Match (RDS last loaded at "), lines[2]
        assert lines[3:5] == ["--- Istiod Routes", "+++ Envoy Routes"], lines[3:5]
        assert any(line.startswith("-") and '"dup"' in line for line in lines)
        assert not any(line.startswith("+") and '"dup"' in line for line in lines)
        # the other Envoys are untouched
        others = rows(mesh, "-v", "1")
        assert all(
            statuses(c)[4] == "SYNCED"
            for n, c in others.items()
            if n not in ("", "frontend-0.default")
        )
    finally:
        write_atomically(path, json.loads(good))
    poll(lambda: not stale(), 30.0, "the good route file to be SYNCED again")
    assert proxy_status(mesh, "frontend-0").stdout.splitlines()[:2] == [
        "Clusters Match",
        "Listeners Match",
    ]


def test_one_proxy_is_its_sent_config_against_its_running_one(mesh: LocalMesh) -> None:
    """istioctl proxy-status POD: Clusters, Listeners and Routes Match for every Envoy of
    a mesh that took its config (a spelling, a default or a redacted key is no diff)."""
    for proxy in ("frontend-0", "backend-v1-0", "istio-ingressgateway"):
        done = proxy_status(mesh, proxy)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[:2] == ["Clusters Match", "Listeners Match"], done.stdout[:2000]
        assert re.fullmatch(
            r"Routes Match \(RDS last loaded at \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \w+\)",
            lines[2],
        ), lines
        assert len(lines) == 3


def stat_name(route: str) -> str:
    """How Envoy writes a route table's name in a stat name (`:` becomes `_`)."""
    return route.replace(":", "_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "wide"], "-o/--output 'wide': expected one of table, json, yaml"),
        (["-v", "2"], "-v/--verbosity 2: expected 0 or 1"),
        (["frontend-9"], "unknown proxy 'frontend-9'"),
    ],
)
def test_mistakes_get_one_line_and_exit_2(mesh: LocalMesh, args: list[str], message: str) -> None:
    done = proxy_status(mesh, *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"mesh proxy-status: {message}")
    assert len(done.stderr.splitlines()) == 1
