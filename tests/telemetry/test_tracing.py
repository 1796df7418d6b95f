import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from telemetry.settings import SettingsError, telemetry_from_env
from telemetry.tracing import Tracing, fastapi_kwargs

from .conftest import SETTINGS, build_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def test_one_server_span_per_request_parented_on_traceparent(traced, exporter):
    r = await traced.get("/items/7", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    assert r.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET /items/{item_id}"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.resource.attributes["service.name"] == "svc"
    assert span.resource.attributes["service.version"] == "v9"
    assert span.resource.attributes["service.instance.id"] == "svc-0"
    # the log context sees the same trace id as the span
    assert r.json()["trace_id"] == TRACE_ID


@pytest.mark.parametrize(
    "headers",
    [
        {"b3": f"{TRACE_ID}-{PARENT}-1"},
        {"x-b3-traceid": TRACE_ID, "x-b3-spanid": PARENT, "x-b3-sampled": "1"},
    ],
)
async def test_b3_single_and_multi_are_extracted(traced, exporter, headers):
    await traced.get("/items/1", headers=headers)
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT


async def test_no_incoming_context_starts_a_new_trace(traced, exporter):
    r = await traced.get("/items/1", headers={"x-request-id": "req-1"})
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert r.json() == {
        "item": 1,
        "request_id": "req-1",
        "trace_id": format(span.context.trace_id, "032x"),
    }


async def test_5xx_marks_the_span_as_error(traced, exporter):
    await traced.get("/boom")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 503


async def test_unmatched_route_gets_one_name(traced, exporter):
    await traced.get("/nope/123")
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET unmatched"


async def test_disabled_tracing_adds_nothing_but_still_reads_trace_id_from_headers():
    app, _, tracing = build_app(None)
    assert not tracing.enabled
    marker = object()
    assert tracing.middleware(marker) is marker  # type: ignore[arg-type]
    with tracing.client_span("GET", "http://x") as span:
        assert span is None
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/items/1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    assert r.json()["trace_id"] == TRACE_ID


async def test_client_span_is_child_of_server_span_and_injected():
    exporter = InMemorySpanExporter()
    tracing = Tracing(SETTINGS, span_exporter=exporter)
    app = FastAPI(**fastapi_kwargs())
    seen: dict[str, str] = {}

    @app.get("/call")
    async def call() -> dict[str, str]:
        with tracing.client_span("GET", "http://backend/api") as span:
            assert span is not None
            tracing.inject(seen)
        return seen

    transport = httpx.ASGITransport(app=tracing.middleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await c.get("/call", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    client, server = exporter.get_finished_spans()
    assert client.kind == SpanKind.CLIENT and server.kind == SpanKind.SERVER
    assert client.parent.span_id == server.context.span_id
    client_span_id = format(client.context.span_id, "016x")
    assert seen["traceparent"] == f"00-{TRACE_ID}-{client_span_id}-01"
    assert seen["x-b3-traceid"] == TRACE_ID
    assert seen["x-b3-spanid"] == client_span_id


def test_fastapi_own_telemetry_is_switched_off():
    kwargs = fastapi_kwargs()
    if kwargs:
        assert kwargs["telemetry"] == {"tracing": False, "metrics": False, "logs": False}
        FastAPI(**kwargs)  # accepted by the installed FastAPI


def test_settings_from_env():
    s = telemetry_from_env(
        {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
        default_service="backend",
        version="v2",
        instance="b-0",
    )
    assert s.traces_exporters == ("otlp", "console")
    assert s.otlp_traces_endpoint == "http://c:4318/v1/traces"
    assert s.service_name == "backend"
    none = telemetry_from_env({}, default_service="frontend", version="v1", instance="f")
    assert none.traces_exporters == ()
    assert Tracing(none).enabled is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        telemetry_from_env(env, default_service="b", version="v1", instance="i")


def test_console_exporter_writes_spans(capsys):
    settings = telemetry_from_env(
        {"OTEL_TRACES_EXPORTER": "console"}, default_service="svc", version="v1", instance="i"
    )
    tracing = Tracing(settings)
    assert tracing.enabled and tracing.exports
    with tracing.client_span("GET", "http://backend/api/tasks"):
        pass
    tracing.shutdown()  # flushes the batch
    out = capsys.readouterr().out
    assert '"name": "GET"' in out and '"service.name": "svc"' in out
