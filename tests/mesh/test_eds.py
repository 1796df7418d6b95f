"""Readiness the Istio way: outbound clusters on EDS files, the runner probes and publishes."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.loop.endpoints import Endpoint, Endpoints
from mesh.loop.prober import ProbeWorker
from mesh.loop.workloads import deployment_of
from mesh.manifests import load
from mesh.translate.clusters import endpoint_probes
from mesh.translate.eds import ASSIGNMENT_TYPE, discovery_response, hostnames, use_eds
from mesh.translate.probes import PodProbes, Probe, ReadinessProbe
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


def published(path: Path) -> list[tuple[str, int]]:
    (resource,) = json.loads(path.read_text())["resources"]
    return [
        (e["endpoint"]["hostname"], e["endpoint"]["address"]["socket_address"]["port_value"])
        for group in resource["endpoints"]
        for e in group["lb_endpoints"]
    ]


def test_the_publisher_writes_the_ready_replicas_of_the_selected_deployments(
    tmp_path: Path,
) -> None:
    _, _, files = eds_config(tmp_path)
    v1 = next(p for p, a in files.items() if a["cluster_name"] == backend_cluster("v1"))
    v2 = next(p for p, a in files.items() if a["cluster_name"] == backend_cluster("v2"))
    endpoints = Endpoints()
    endpoints.set_clusters(files, deployment_of(load(K8S)))
    assert published(v1) == [] and published(v2) == []  # nothing ready yet
    a, b = (
        Endpoint("backend-v1-0", "backend-v1", 4001),
        Endpoint("backend-v1-1", "backend-v1", 4002),
    )
    surge = Endpoint("backend-v1-0", "backend-v1", 4003)  # a rolling update's new replica
    assert endpoints.sync([a, b, Endpoint("backend-v2-0", "backend-v2", 4004)])
    assert published(v1) == [("backend-v1-0", 4001), ("backend-v1-1", 4002)]
    assert published(v2) == [("backend-v2-0", 4004)]
    before = v2.stat().st_mtime_ns
    assert endpoints.sync([b, surge, Endpoint("backend-v2-0", "backend-v2", 4004)])
    assert published(v1) == [("backend-v1-0", 4003), ("backend-v1-1", 4002)]
    assert v2.stat().st_mtime_ns == before  # unchanged endpoints: the file is left alone
    assert not endpoints.sync([b, surge, Endpoint("backend-v2-0", "backend-v2", 4004)])
    assert set(endpoints.clusters_of("backend-v1")) == {
        backend_cluster("v1"),
        "outbound|5000||backend-service.default.svc.cluster.local",
    }
    assert not list(v1.parent.glob(".*.tmp"))  # temp files moved over, none left


class _Health(BaseHTTPRequestHandler):
    status = 200
    startup_status = 200
    counts: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        cls = type(self)
        cls.counts[self.path] = cls.counts.get(self.path, 0) + 1
        status = {"/readyz": cls.status, "/healthz": cls.status, "/startz": cls.startup_status}
        self.send_response(status.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(name="app")
def _app() -> Iterator[tuple[str, type[_Health]]]:
    """A /readyz and /healthz on a free loopback port whose status the test sets."""
    handler = type("Health", (_Health,), {"status": 503, "counts": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


class Seen:
    """What a ProbeWorker reported, waited on without sleeping."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ready: list[bool] = []
        self.unhealthy: list[str] = []

    def on_ready(self, ready: bool) -> None:
        with self.cond:
            self.ready.append(ready)
            self.cond.notify_all()

    def on_unhealthy(self, message: str) -> None:
        with self.cond:
            self.unhealthy.append(message)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool]) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=15)


def test_the_prober_reports_readiness_while_the_probe_passes(
    app: tuple[str, type[_Health]],
) -> None:
    url, handler = app
    seen, stop = Seen(), threading.Event()
    probes = PodProbes(readiness=ReadinessProbe("/readyz", period_s=1, failure_threshold=1))
    worker = ProbeWorker("x-0", url, probes, stop.is_set, seen.on_ready, seen.on_unhealthy, stop)
    worker.start()
    try:
        handler.status = 200
        assert seen.wait(lambda: seen.ready[-1:] == [True])
        handler.status = 503
        assert seen.wait(lambda: seen.ready[-1:] == [False])
        handler.status = 200
        assert seen.wait(lambda: seen.ready[-1:] == [True])
        assert seen.unhealthy == []  # readiness never kills
    finally:
        stop.set()
        worker.thread.join(timeout=5)


def test_the_prober_calls_a_failing_liveness_probe_unhealthy(
    app: tuple[str, type[_Health]],
) -> None:
    url, handler = app
    handler.status = 200
    seen, stop = Seen(), threading.Event()
    liveness = Probe("/healthz", period_s=1, failure_threshold=2)
    worker = ProbeWorker(
        "x-0", url, PodProbes(liveness=liveness), stop.is_set, seen.on_ready,
        seen.on_unhealthy, stop,
    )  # fmt: skip
    worker.start()
    try:
        assert seen.wait(lambda: seen.ready == [True])  # no readinessProbe: ready at once
        handler.status = 500
        assert seen.wait(lambda: bool(seen.unhealthy))
        assert seen.unhealthy[0].startswith("liveness probe failed 2 times (GET /healthz)")
    finally:
        stop.set()
        worker.thread.join(timeout=5)


def test_a_startup_probe_holds_the_other_probes_back(app: tuple[str, type[_Health]]) -> None:
    url, handler = app
    seen, stop = Seen(), threading.Event()
    probes = PodProbes(
        startup=Probe("/startz", period_s=1, failure_threshold=30),
        readiness=ReadinessProbe("/readyz", period_s=1),
    )
    handler.status, handler.startup_status = 200, 503
    worker = ProbeWorker("x-0", url, probes, stop.is_set, seen.on_ready, seen.on_unhealthy, stop)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while handler.counts.get("/startz", 0) < 2 and time.monotonic() < deadline:
            stop.wait(0.05)  # poll the server's count: the condition, not a duration
        assert handler.counts.get("/startz", 0) >= 2
        # the startup probe failed twice: readiness was never probed, nothing reported
        assert handler.counts.get("/readyz", 0) == 0 and seen.ready == []
        handler.startup_status = 200
        assert seen.wait(lambda: seen.ready == [True])
        assert seen.unhealthy == []
    finally:
        stop.set()
        worker.thread.join(timeout=5)
