import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.fault import FaultSpec


def metric_samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


async def test_fault_applies_to_api_only(v1):
    r = await v1.put("/admin/fault", json={"status": 503, "error_rate": 1.0})
    assert r.status_code == 200 and r.json()["active"] is True
    faulted = await v1.get("/api/tasks")
    assert faulted.status_code == 503
    assert faulted.headers["x-fault-injected"] == "true"
    assert faulted.headers["x-backend-instance"] == "backend-v1-0"
    assert faulted.json()["error"] == "fault_injected"
    assert (await v1.post("/api/tasks", json={"title": "x"})).status_code == 503
    for path in ("/healthz", "/readyz", "/version", "/metrics", "/admin/fault"):
        r = await v1.get(path)
        assert r.status_code == 200, path
        assert "x-fault-injected" not in r.headers
    cleared = await v1.delete("/admin/fault")
    assert cleared.json()["active"] is False
    ok = await v1.get("/api/tasks")
    assert ok.status_code == 200 and "x-fault-injected" not in ok.headers


async def test_status_alone_means_every_request(v1):
    body = (await v1.put("/admin/fault", json={"status": 500})).json()
    assert body["error_rate"] == 1.0
    assert (await v1.get("/api/headers")).status_code == 500


async def test_partial_error_rate_counts_match_replies_and_metrics(v1):
    await v1.put("/admin/fault", json={"status": 502, "error_rate": 0.5})
    statuses = [(await v1.get("/api/tasks")).status_code for _ in range(60)]
    assert set(statuses) <= {200, 502}
    failures = statuses.count(502)
    assert 0 < failures < 60  # 2**-60 chance of a false failure
    view = (await v1.get("/admin/fault")).json()
    assert view["injected"]["errors"] == failures
    samples = metric_samples((await v1.get("/metrics")).text)
    injected = {s.labels["kind"]: s.value for s in samples["backend_faults_injected_total"]}
    assert injected["error"] == failures
    served = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in samples["http_server_requests_total"]
    }
    assert served[("/api/tasks", "502")] == failures
    assert served[("/api/tasks", "200")] == 60 - failures


async def test_delay_fault_marks_the_reply(v1):
    await v1.put("/admin/fault", json={"delay_ms": 1})
    r = await v1.get("/api/tasks")
    assert r.status_code == 200
    assert r.headers["x-fault-injected"] == "true"
    assert r.headers["x-fault-delay-ms"] == "1"
    assert (await v1.get("/admin/fault")).json()["injected"]["delays"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": 404}, "status"),
        ({"status": 600}, "status"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"delay_ms": 30001}, "delay_ms"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"delay_rate": 2}, "delay_rate"),
        ({"abort": True}, "abort"),
    ],
)
async def test_fault_out_of_range_is_422_naming_the_field(v1, body, field):
    before = (await v1.get("/admin/fault")).json()
    r = await v1.put("/admin/fault", json=body)
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == field
    assert (await v1.get("/admin/fault")).json() == before


async def test_fault_from_settings_is_active_at_start(make_backend):
    spec = FaultSpec(status=504, error_rate=1.0)
    async with make_backend("v2", fault=spec) as c:
        assert (await c.get("/api/tasks")).status_code == 504
        assert (await c.get("/healthz")).status_code == 200


async def test_readiness_toggle_for_drain_demos(v1):
    assert (await v1.get("/readyz")).status_code == 200
    r = await v1.put("/admin/ready", json={"ready": False})
    assert r.json() == {"ready": False}
    assert (await v1.get("/readyz")).status_code == 503
    assert (await v1.get("/healthz")).status_code == 200
    assert (await v1.get("/api/tasks")).status_code == 200
    await v1.put("/admin/ready", json={"ready": True})
    assert (await v1.get("/readyz")).status_code == 200
    bad = await v1.put("/admin/ready", json={"ready": "no"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "ready"


async def test_liveness_toggle_fails_healthz_only(v1):
    assert (await v1.get("/admin/live")).json() == {"live": True}
    r = await v1.put("/admin/live", json={"live": False})
    assert r.json() == {"live": False}
    failing = await v1.get("/healthz")
    assert failing.status_code == 503 and "liveness" in failing.json()["status"]
    assert (await v1.get("/readyz")).status_code == 200  # readiness is its own toggle
    assert (await v1.get("/api/tasks")).status_code == 200
    await v1.put("/admin/live", json={"live": True})
    assert (await v1.get("/healthz")).status_code == 200
    bad = await v1.put("/admin/live", json={"live": 0})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "live"


async def test_version_and_health(v2):
    assert (await v2.get("/version")).json() == {
        "service": "backend",
        "version": "v2",
        "instance": "backend-v2-0",
    }
    assert (await v2.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_have_route_templates_and_version(v2):
    await v2.get("/api/tasks")
    await v2.get("/api/tasks/1")
    await v2.get("/api/tasks/2")
    await v2.patch("/api/tasks/1", json={"done": True})
    samples = metric_samples((await v2.get("/metrics")).text)
    totals = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in samples["http_server_requests_total"]
        if s.labels["version"] == "v2"
    }
    assert totals[("/api/tasks/{task_id}", "GET", "200")] == 2
    assert totals[("/api/tasks/{task_id}", "PATCH", "200")] == 1
    assert totals[("/api/tasks", "GET", "200")] == 1
    buckets = [
        s for s in samples["http_server_request_duration_seconds_bucket"]
        if s.labels["route"] == "/api/tasks" and s.labels["le"] == "+Inf"
    ]  # fmt: skip
    assert buckets[0].value == 1
    (info,) = samples["taskmesh_build_info"]
    assert info.labels["version"] == "v2" and info.labels["service"] == "backend"


async def test_metrics_can_be_switched_off(make_backend):
    async with make_backend("v1", metrics_enabled=False) as c:
        await c.get("/api/tasks")
        samples = metric_samples((await c.get("/metrics")).text)
        assert "http_server_requests_total" not in samples
        assert "taskmesh_build_info" in samples
