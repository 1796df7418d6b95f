"""Readiness the Istio way: outbound clusters on EDS files, the runner probes and publishes."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.endpoints import Endpoints
from mesh.manifests import load
from mesh.translate.clusters import endpoint_probes
from mesh.translate.eds import ASSIGNMENT_TYPE, discovery_response, hostnames, use_eds
from mesh.translate.probes import ReadinessProbe
from tests.mesh.support import K8S, backend_cluster, cluster, local_config


def manifest_probe(deployment: str) -> dict[str, Any]:
    doc = yaml.safe_load((K8S / "deployments" / f"{deployment}.yaml").read_text())
    return doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def eds_config(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[Path, Any]]:
    """k8s/'s local translation before and after use_eds, and the assignments."""
    before = local_config(K8S)
    after = copy.deepcopy(before)
    return before, after, use_eds(after, tmp_path / "eds")


def test_local_clusters_have_no_active_health_check() -> None:
    """Envoy never health-checks in Istio: a passing check also hid outlier ejections."""
    for c in local_config(K8S)["static_resources"]["clusters"]:
        assert "health_checks" not in c, c["name"]
        assert "successful_active_health_check_uneject_host" not in c.get("outlier_detection", {})


def test_every_outbound_cluster_reads_its_endpoints_from_an_eds_file(tmp_path: Path) -> None:
    before, after, files = eds_config(tmp_path)
    outbound = [
        c for c in after["static_resources"]["clusters"] if c["name"].startswith("outbound|")
    ]
    assert outbound and len(files) == len(outbound)
    for c in outbound:
        assert c["type"] == "EDS"
        assert "load_assignment" not in c
        source = c["eds_cluster_config"]["eds_config"]
        assert source["resource_api_version"] == "V3"
        path = Path(source["path_config_source"]["path"])
        assert path.parent == (tmp_path / "eds").resolve()
        assert files[path] == cluster(before, c["name"])["load_assignment"]
        assert c["eds_cluster_config"]["service_name"] == files[path]["cluster_name"]


def test_other_clusters_stay_as_they_were(tmp_path: Path) -> None:
    before, after, _ = eds_config(tmp_path)
    others = [
        c for c in before["static_resources"]["clusters"] if not c["name"].startswith("outbound|")
    ]
    for c in others:
        assert cluster(after, c["name"]) == c


def test_the_file_holds_only_the_ready_endpoints(tmp_path: Path) -> None:
    _, _, files = eds_config(tmp_path)
    assignment = next(a for a in files.values() if a["cluster_name"] == backend_cluster("v1"))
    everyone = hostnames(assignment)
    assert len(everyone) == 2
    response = discovery_response(assignment, {everyone[1]}, 7)
    assert response["version_info"] == "7"
    (resource,) = response["resources"]
    assert resource["@type"] == ASSIGNMENT_TYPE
    assert resource["cluster_name"] == backend_cluster("v1")
    assert hostnames(resource) == [everyone[1]]


def test_the_runner_probes_what_the_deployments_declare() -> None:
    probes = endpoint_probes(load(K8S))
    for name in ("backend-v1", "backend-v2", "frontend"):
        declared = manifest_probe(name)
        probe = probes[name]
        assert probe.path == declared["httpGet"]["path"]
        assert probe.period_s == declared["periodSeconds"]
        assert probe.failure_threshold == declared["failureThreshold"]
        assert probe.success_threshold == declared.get("successThreshold", 1)


def published(path: Path) -> list[str]:
    (resource,) = json.loads(path.read_text())["resources"]
    return hostnames(resource)


def test_a_replica_without_probe_is_published_at_once_and_leaves_when_terminating(
    tmp_path: Path,
) -> None:
    _, _, files = eds_config(tmp_path)
    v1 = next(p for p, a in files.items() if a["cluster_name"] == backend_cluster("v1"))
    names = hostnames(files[v1])
    endpoints = Endpoints(files, {n: None for n in names}, {})
    endpoints.start()
    try:
        assert published(v1) == names
        endpoints.set_terminating(names[0], True)
        assert published(v1) == names[1:]
        assert not endpoints.published(names[0])
        endpoints.set_terminating(names[0], False)
        assert published(v1) == names
        assert not list(v1.parent.glob(".*.tmp"))  # temp files moved over, none left
    finally:
        endpoints.stop()


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(type(self).status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(name="app")
def _app() -> Iterator[tuple[str, type[_Readyz]]]:
    """A /readyz on a free loopback port whose status the test sets."""
    handler = type("Readyz", (_Readyz,), {"status": 503})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_prober_publishes_a_replica_while_its_probe_passes(
    tmp_path: Path, app: tuple[str, type[_Readyz]]
) -> None:
    url, handler = app
    _, _, files = eds_config(tmp_path)
    v1 = next(p for p, a in files.items() if a["cluster_name"] == backend_cluster("v1"))
    probed, other = hostnames(files[v1])
    probe = ReadinessProbe("/readyz", period_s=1, failure_threshold=1)
    endpoints = Endpoints(files, {probed: probe, other: None}, {probed: url})
    endpoints.start()
    try:
        assert published(v1) == [other]  # not ready until probed
        handler.status = 200
        assert endpoints.wait(probed, ready=True, timeout=10)
        assert published(v1) == [probed, other]
        handler.status = 503
        assert endpoints.wait(probed, ready=False, timeout=10)
        assert published(v1) == [other]
    finally:
        endpoints.stop()
