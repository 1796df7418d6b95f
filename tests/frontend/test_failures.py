import pytest

from frontend.client import call_timeout
from frontend.errors import summarise
from tests.support.procs import free_port

from .conftest import Reply


@pytest.mark.parametrize(
    ("reply", "status", "cause"),
    [
        (Reply(503, "upstream connect error", {"x-envoy-overloaded": "true"}), 503, "circuit_open"),
        (Reply(503, "no healthy upstream"), 503, "no_healthy_upstream"),
        (Reply(504, "upstream request timeout"), 504, "timeout"),
        (Reply(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    "connection failure, transport failure reason: delayed connect error: 111"),
         502, "refused"),
        (Reply(503, "upstream connect error or disconnect/reset before headers. reset reason: "
                    "connection termination"), 502, "bad_reply"),
        (Reply(200, "<html>not json</html>"), 502, "bad_reply"),
        (Reply(500, {"error": "internal_error", "message": "internal error: KeyError"}),
         502, "backend_error"),
        (Reply(503, {"error": "fault_injected", "message": "fault!"},
               {"x-fault-injected": "true"}), 503, "backend_error"),
        (Reply(503, {"error": "store_unavailable", "cause": "store_unavailable",
                     "message": "the task store is unavailable: connection refused"}),
         503, "store_unavailable"),
        (Reply(500, {"error": "internal_error", "cause": "store_unavailable"}),
         502, "backend_error"),
        (Reply(drop_connection=True), 502, "bad_reply"),
    ],
)  # fmt: skip
async def test_backend_failures_become_json_with_a_cause(frontend, fake, reply, status, cause):
    fake.reply = reply
    r = await frontend.get("/api/tasks", headers={"x-request-id": "req-1"})
    assert r.status_code == status
    body = r.json()
    assert body["error"] == "backend_failure"
    assert body["cause"] == cause
    assert body["message"]
    assert body["request_id"] == "req-1"


async def test_backend_error_summarises_the_body_and_marks_faults(frontend, fake):
    fake.reply = Reply(503, {"error": "fault_injected", "message": "fault!"},
                       {"x-fault-injected": "true"})  # fmt: skip
    body = (await frontend.get("/api/tasks")).json()
    assert body["backend_status"] == 503
    assert body["backend_body"] == "fault!"
    assert body["fault_injected"] is True
    assert body["backend"] == {"version": fake.version, "instance": fake.instance}


async def test_refused_connection_is_502(make_frontend):
    async with make_frontend(f"http://127.0.0.1:{free_port()}") as frontend:
        r = await frontend.get("/api/tasks")
        assert r.status_code == 502 and r.json()["cause"] == "refused"
        page = await frontend.get("/")
        assert page.status_code == 502
        assert "connection refused" in page.text


async def test_timeout_is_504(fake, make_frontend):
    fake.reply = Reply(delay_s=30)
    async with make_frontend(fake.url, backend_timeout_s=0.05) as frontend:
        r = await frontend.get("/api/tasks")
    assert r.status_code == 504 and r.json()["cause"] == "timeout"
    assert "0.05" in r.json()["message"]


async def test_mesh_expected_timeout_caps_ours(frontend, fake):
    fake.reply = Reply(delay_s=30)
    r = await frontend.get("/api/tasks", headers={"x-envoy-expected-rq-timeout-ms": "50"})
    assert r.status_code == 504 and "0.05" in r.json()["message"]


def test_call_timeout_rules():
    assert call_timeout({}, 10.0) == 10.0
    assert call_timeout({"x-envoy-expected-rq-timeout-ms": "2500"}, 10.0) == 2.5
    assert call_timeout({"x-envoy-expected-rq-timeout-ms": "60000"}, 10.0) == 10.0
    assert call_timeout({"x-envoy-expected-rq-timeout-ms": "junk"}, 10.0) == 10.0
    assert call_timeout({"x-envoy-expected-rq-timeout-ms": "0"}, 10.0) == 10.0


def test_summarise():
    assert summarise(b'{"message": "title: too long", "error": "x"}') == "title: too long"
    assert summarise(b"  no healthy\n upstream ") == "no healthy upstream"
    long = summarise(b"x" * 1000)
    assert len(long) == 200 and long.endswith("…")


async def test_plain_text_refusal_keeps_its_status_in_json(frontend, fake):
    fake.reply = Reply(403, "RBAC: access denied")
    r = await frontend.get("/api/tasks")
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "backend_rejected"
    assert "RBAC: access denied" in body["message"]
    assert body["backend"]["instance"] == fake.instance
