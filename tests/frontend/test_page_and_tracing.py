import re

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from frontend.errors import CAUSE_WORDS
from frontend.settings import FrontendSettings
from telemetry.settings import SettingsError
from tests.support.html import element

from .conftest import Reply

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_page_shows_tasks_who_answered_and_the_ids(frontend, fake):
    r = await frontend.get("/", headers={"x-request-id": "req-42", "traceparent": TRACEPARENT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    badge = element(html, "badge")
    assert element(html, "badge-version").text == fake.version
    assert element(html, "badge-instance").text == fake.instance
    assert element(html, "badge-request-id").text == "req-42"
    assert element(html, "badge-trace-id").text == TRACE_ID
    assert fake.instance in badge.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert not re.search(r"(src|href)=\"https?://", html)  # no external assets


async def test_page_degrades_with_the_cause_in_words(frontend, fake):
    # Only the degraded part counts: every cause's words are also in the page's JSON
    # block for its script, whatever happened.
    fake.reply = Reply(503, "x", {"x-envoy-overloaded": "true"})
    r = await frontend.get("/")
    assert r.status_code == 503
    degraded = element(r.text, "degraded")
    assert not degraded.hidden
    assert f"{CAUSE_WORDS['circuit_open']}." in degraded.text
    assert "(HTTP 503, cause circuit_open)" in degraded.text
    assert "Traceback" not in r.text
    fake.reply = Reply(503, "no healthy upstream")
    degraded = element((await frontend.get("/")).text, "degraded")
    assert not degraded.hidden
    assert f"{CAUSE_WORDS['no_healthy_upstream']}." in degraded.text
    assert "cause no_healthy_upstream" in degraded.text


async def test_page_that_answered_shows_no_degraded_part(frontend, fake):
    degraded = element((await frontend.get("/")).text, "degraded")
    assert degraded.hidden and degraded.text == "The task list is unavailable."


async def test_client_span_context_reaches_the_backend(fake, make_frontend):
    exporter = InMemorySpanExporter()
    async with make_frontend(fake.url, span_exporter=exporter) as frontend:
        r = await frontend.get(
            "/api/tasks", headers={"traceparent": TRACEPARENT, "x-b3-parentspanid": "1" * 16}
        )
    assert r.status_code == 200
    client, server = exporter.get_finished_spans()
    assert client.kind == SpanKind.CLIENT and server.kind == SpanKind.SERVER
    assert client.parent.span_id == server.context.span_id
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert client.name == "GET /api/tasks"
    got = fake.received[-1]["headers"]
    client_id = format(client.context.span_id, "016x")
    assert got["traceparent"] == f"00-{TRACE_ID}-{client_id}-01"
    assert got["x-b3-traceid"] == TRACE_ID and got["x-b3-spanid"] == client_id
    assert "x-b3-parentspanid" not in got  # the stale incoming parent is not sent on


def test_settings_ignore_kubernetes_service_links():
    s = FrontendSettings.from_env(
        {"BACKEND_SERVICE_PORT": "tcp://10.0.0.1:5000", "FRONTEND_SERVICE_PORT": "tcp://x:1"}
    )
    assert s.backend_url == "http://backend-service:5000"
    assert s.port == 8000 and s.backend_timeout_s == 10.0


def test_settings_from_env():
    s = FrontendSettings.from_env(
        {"BACKEND_URL": "http://127.0.0.1:5001/", "BACKEND_TIMEOUT_S": "2.5", "PORT": "8001",
         "INSTANCE_NAME": "frontend-0"}
    )  # fmt: skip
    assert (s.backend_url, s.backend_timeout_s, s.port) == ("http://127.0.0.1:5001", 2.5, 8001)
    assert s.instance == "frontend-0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BACKEND_URL": "backend-service:5000"}, "BACKEND_URL"),
        ({"BACKEND_URL": "ftp://x"}, "BACKEND_URL"),
        ({"BACKEND_URL": "http://x:99999"}, "BACKEND_URL"),
        ({"BACKEND_TIMEOUT_S": "soon"}, "BACKEND_TIMEOUT_S"),
        ({"BACKEND_TIMEOUT_S": "0"}, "BACKEND_TIMEOUT_S"),
        ({"PORT": "-1"}, "PORT"),
    ],
)
def test_bad_settings_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        FrontendSettings.from_env(env)


async def test_page_says_what_a_refusing_mesh_said(frontend, fake):
    fake.reply = Reply(403, "RBAC: access denied")
    r = await frontend.get("/")
    assert r.status_code == 502
    degraded = element(r.text, "degraded")
    assert not degraded.hidden and "RBAC: access denied" in degraded.text
