import uuid

from prometheus_client.parser import text_string_to_metric_families

from telemetry.propagation import FORWARDED_HEADERS

from .conftest import Reply

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_list_adds_which_backend_answered(frontend, fake):
    r = await frontend.get("/api/tasks")
    assert r.status_code == 200
    body = r.json()
    assert body["backend"] == {"version": fake.version, "instance": fake.instance}
    assert body["tasks"][0]["priority"] == "high"
    assert r.headers["x-backend-version"] == fake.version
    assert r.headers["x-backend-instance"] == fake.instance
    assert fake.received[-1]["path"] == "/api/tasks"


async def test_forwards_exactly_the_listed_headers(frontend, fake):
    sent = {name: f"value-of-{name}" for name in FORWARDED_HEADERS}
    sent["traceparent"] = TRACEPARENT
    junk = {"cookie": "s=1", "authorization": "Bearer t", "x-other": "1",
            "x-envoy-peer-metadata": "abc", "x-forwarded-client-cert": "By=x"}  # fmt: skip
    await frontend.get("/api/tasks", headers={**sent, **junk})
    got = fake.received[-1]["headers"]
    for name, value in sent.items():
        assert got.get(name) == value, name
    for name in junk:
        assert name not in got, name


async def test_makes_a_request_id_when_none_came(frontend, fake):
    r = await frontend.get("/api/tasks")
    made = fake.received[-1]["headers"]["x-request-id"]
    assert uuid.UUID(made)
    await frontend.get("/api/tasks")
    assert fake.received[-1]["headers"]["x-request-id"] != made
    assert r.status_code == 200


async def test_post_forwards_or_makes_an_idempotency_key(frontend, fake):
    body = b'{"title": "x"}'
    fake.reply = Reply(status=201, body={"id": 9, "title": "x", "done": False})
    r = await frontend.post("/api/tasks", content=body, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 201 and r.json()["id"] == 9
    assert r.json()["backend"]["version"] == fake.version
    first = fake.received[-1]
    assert first["headers"]["idempotency-key"] == "k-1"
    assert first["body"] == body
    assert first["headers"]["content-type"] == "application/json"
    await frontend.post("/api/tasks", content=body)
    assert uuid.UUID(fake.received[-1]["headers"]["idempotency-key"])
    await frontend.get("/api/tasks", headers={"Idempotency-Key": "k-2"})
    assert "idempotency-key" not in fake.received[-1]["headers"]


async def test_write_verbs_pass_status_and_body_through(frontend, fake):
    fake.reply = Reply(status=200, body={"id": 3, "done": True})
    r = await frontend.patch("/api/tasks/3", content=b'{"done": true}')
    assert r.status_code == 200 and r.json()["done"] is True
    assert (fake.received[-1]["method"], fake.received[-1]["path"]) == ("PATCH", "/api/tasks/3")
    fake.reply = Reply(status=204, body=b"")
    r = await frontend.delete("/api/tasks/3")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["x-backend-instance"] == fake.instance
    fake.reply = Reply(status=422, body={"error": "validation_error", "message": "title: bad"})
    r = await frontend.post("/api/tasks", content=b'{"title": ""}')
    assert r.status_code == 422 and r.json()["message"] == "title: bad"
    assert r.json()["backend"]["instance"] == fake.instance
    fake.reply = Reply(status=404, body={"error": "not_found", "message": "task 7 not found"})
    r = await frontend.get("/api/tasks/7")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_headers_shows_both_hops(frontend, fake):
    r = await frontend.get("/api/headers", headers={"x-canary": "true"})
    body = r.json()
    assert body["frontend"]["headers"]["x-canary"] == "true"
    assert body["frontend"]["instance"] == "frontend-0"
    assert body["backend"]["headers"]["x-canary"] == "true"
    assert body["backend"]["version"] == fake.version


async def test_bad_task_id_and_unknown_route_are_json(frontend, fake):
    r = await frontend.get("/api/tasks/abc")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "task_id"
    r = await frontend.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await frontend.post("/api/tasks", content=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert fake.received == []


async def test_probes_and_version(frontend, fake):
    assert (await frontend.get("/healthz")).status_code == 200
    assert (await frontend.get("/readyz")).json() == {"status": "ready"}
    assert (await frontend.get("/version")).json() == {
        "service": "frontend",
        "version": "v1",
        "instance": "frontend-0",
    }
    fake.reply = Reply(status=503, body="no healthy upstream")
    # readiness is about this process, not the backend: it must not cascade
    assert (await frontend.get("/readyz")).status_code == 200


async def test_backend_call_metrics_by_outcome(frontend, fake):
    await frontend.get("/api/tasks")
    await frontend.get("/api/tasks")
    fake.reply = Reply(status=503, body="x", headers={"x-envoy-overloaded": "true"})
    await frontend.get("/api/tasks")
    text = (await frontend.get("/metrics")).text
    totals: dict[tuple[str, str], float] = {}
    durations: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "frontend_backend_requests_total":
                totals[(s.labels["route"], s.labels["outcome"])] = s.value
            if s.name == "frontend_backend_request_duration_seconds_count":
                durations[s.labels["outcome"]] = s.value
    assert totals[("/api/tasks", "ok")] == 2
    assert totals[("/api/tasks", "circuit_open")] == 1
    assert durations == {"ok": 2, "circuit_open": 1}


async def test_session_is_closed_on_shutdown(fake, make_frontend):
    async with make_frontend(fake.url) as c:
        client = c.app.state.frontend.client
        assert client.started
    assert not client.started


async def test_frontend_metrics_use_route_templates(frontend, fake):
    await frontend.get("/api/tasks")
    await frontend.get("/api/tasks/3")
    await frontend.get("/")
    text = (await frontend.get("/metrics")).text
    routes = {
        s.labels["route"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "http_server_requests_total"
    }
    assert {"/api/tasks", "/api/tasks/{task_id}", "/"} <= routes
