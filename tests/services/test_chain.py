"""The two services as real processes: propagation, tracing, the shared store, metrics."""

from __future__ import annotations

import concurrent.futures
import signal
import time
import uuid

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import Proc, running

from .conftest import Services, start_backend, start_frontend

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def test_headers_arrive_at_the_backend_with_the_same_ids(services: Services):
    request_id = str(uuid.uuid4())
    r = httpx.get(
        services.frontend.url + "/api/headers",
        headers={
            "traceparent": f"00-{TRACE_ID}-{PARENT}-01",
            "x-request-id": request_id,
            "x-canary": "true",
        },
    )
    assert r.status_code == 200
    got = r.json()["backend"]["headers"]
    assert got["x-request-id"] == request_id
    assert got["x-canary"] == "true"
    assert got["traceparent"].split("-")[1] == TRACE_ID
    assert got["traceparent"].split("-")[2] != PARENT  # the frontend's own client span
    assert r.json()["backend"]["version"] == "v2"


def test_backend_server_span_is_a_child_of_the_frontend_client_span(services: Services):
    trace_id = uuid.uuid4().hex
    r = httpx.get(
        services.frontend.url + "/api/tasks",
        headers={"traceparent": f"00-{trace_id}-{PARENT}-01"},
    )
    assert r.status_code == 200

    def complete(spans: list) -> bool:
        return len([s for s in spans if s.trace_id == trace_id]) >= 3

    spans = [s for s in services.otlp.wait_for(complete) if s.trace_id == trace_id]
    by_kind = {(s.service, s.kind): s for s in spans}
    fe_server = by_kind[("frontend", PbSpan.SPAN_KIND_SERVER)]
    fe_client = by_kind[("frontend", PbSpan.SPAN_KIND_CLIENT)]
    be_server = by_kind[("backend", PbSpan.SPAN_KIND_SERVER)]
    assert fe_server.parent_span_id == PARENT
    assert fe_client.parent_span_id == fe_server.span_id
    assert be_server.parent_span_id == fe_client.span_id
    assert be_server.name == "GET /api/tasks"
    assert be_server.attributes["http.route"] == "/api/tasks"


def test_two_processes_writing_at_once_lose_nothing(services: Services):
    run = uuid.uuid4().hex[:8]
    titles = [f"{run}-{i}" for i in range(60)]

    def post(i: int) -> int:
        target = services.v1 if i % 2 else services.v2
        r = httpx.post(target.url + "/api/tasks", json={"title": titles[i]}, timeout=30)
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(post, range(len(titles))))
    assert statuses == [201] * len(titles)
    for proc in (services.v1, services.v2):
        listed = httpx.get(proc.url + "/api/tasks").json()["tasks"]
        mine = [t for t in listed if t["title"].startswith(run)]
        assert sorted(t["title"] for t in mine) == sorted(titles)
        assert len({t["id"] for t in mine}) == len(titles)


def test_v2_priority_survives_a_v1_patch(services: Services):
    task = httpx.post(
        services.v2.url + "/api/tasks", json={"title": "keep my priority", "priority": "high"}
    ).json()
    r = httpx.patch(services.v1.url + f"/api/tasks/{task['id']}", json={"done": True})
    assert r.status_code == 200 and "priority" not in r.json()
    again = httpx.get(services.v2.url + f"/api/tasks/{task['id']}").json()
    assert again["priority"] == "high" and again["done"] is True


def test_frontend_post_is_idempotent_through_the_chain(services: Services):
    key = str(uuid.uuid4())
    replies = [
        httpx.post(
            services.frontend.url + "/api/tasks",
            json={"title": f"once {key}"},
            headers={"Idempotency-Key": key},
        )
        for _ in range(3)
    ]
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["id"] for r in replies}) == 1
    listed = httpx.get(services.v1.url + "/api/tasks").json()["tasks"]
    assert [t["title"] for t in listed].count(f"once {key}") == 1


def test_metrics_parse_with_the_prometheus_parser(services: Services):
    httpx.get(services.frontend.url + "/api/tasks")
    for proc, service in ((services.frontend, "frontend"), (services.v2, "backend")):
        text = httpx.get(proc.url + "/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        requests = families["http_server_requests"]
        routes = {s.labels["route"] for s in requests.samples}
        assert "/api/tasks" in routes
        info = families["taskmesh_build_info"].samples[0]
        assert info.labels["service"] == service
        assert "http_server_request_duration_seconds" in families
    text = httpx.get(services.frontend.url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    outcomes = {s.labels["outcome"] for s in families["frontend_backend_requests"].samples}
    assert "ok" in outcomes


def test_fault_on_the_backend_shows_as_a_clear_frontend_error(services: Services):
    httpx.put(services.v2.url + "/admin/fault", json={"status": 503, "error_rate": 1.0})
    try:
        r = httpx.get(services.frontend.url + "/api/tasks")
        assert r.status_code == 503
        assert r.json()["cause"] == "backend_error" and r.json()["fault_injected"] is True
        page = httpx.get(services.frontend.url + "/")
        assert page.status_code == 503 and "backend error" in page.text
        assert httpx.get(services.v2.url + "/readyz").status_code == 200
    finally:
        httpx.delete(services.v2.url + "/admin/fault")
    assert httpx.get(services.frontend.url + "/api/tasks").status_code == 200


def test_restart_keeps_data_and_does_not_reseed(tmp_path):
    db = tmp_path / "tasks.db"
    logs = tmp_path / "logs"
    procs: list[Proc] = []
    with running(procs):
        procs.append(start_backend("v2", db, logs))
        first = httpx.get(procs[0].url + "/api/tasks").json()["tasks"]
        created = httpx.post(
            procs[0].url + "/api/tasks", json={"title": "survive", "priority": "low"}
        ).json()
        procs[0].stop(signal.SIGTERM)
        assert procs[0].popen.returncode is not None
        procs.append(start_backend("v1", db, logs, index=1))
        after = httpx.get(procs[1].url + "/api/tasks").json()["tasks"]
    assert len(after) == len(first) + 1
    assert [t for t in after if t["id"] == created["id"]][0]["title"] == "survive"


def test_frontend_with_the_backend_down_says_refused(tmp_path):
    procs: list[Proc] = []
    with running(procs):
        backend = start_backend("v1", tmp_path / "t.db", tmp_path)
        procs.append(backend)
        procs.append(start_frontend(backend.url, tmp_path))
        assert httpx.get(procs[1].url + "/api/tasks").status_code == 200
        backend.stop()
        r = httpx.get(procs[1].url + "/api/tasks")
        assert r.status_code == 502 and r.json()["cause"] == "refused"
        assert httpx.get(procs[1].url + "/readyz").status_code == 200


def test_sigterm_fails_readiness_first_then_stops(tmp_path):
    procs: list[Proc] = []
    with running(procs):
        backend = start_backend("v1", tmp_path / "t.db", tmp_path, SHUTDOWN_DELAY_S="30")
        procs.append(backend)
        backend.popen.send_signal(signal.SIGTERM)
        with httpx.Client() as client:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the signal is async: poll until it flips
                status = client.get(backend.url + "/readyz").status_code
                if status == 503:
                    break
            assert status == 503
            assert client.get(backend.url + "/healthz").status_code == 200
        assert backend.popen.poll() is None  # still serving while draining
