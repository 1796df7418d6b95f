import io
import json
import logging

import httpx
from fastapi import FastAPI

from telemetry.logs import RequestContextMiddleware, configure_logging, current_ids


def test_json_line_carries_request_and_trace_ids_from_context():
    stream = io.StringIO()
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        configure_logging(logging.INFO, service="svc", version="v1", instance="i-0", stream=stream)
        from telemetry.logs import request_id_var, trace_id_var

        t1, t2 = request_id_var.set("req-9"), trace_id_var.set("ab" * 16)
        try:
            logging.getLogger("x").info("hello %s", "world", extra={"task_id": 5})
        finally:
            request_id_var.reset(t1)
            trace_id_var.reset(t2)
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)
    entry = json.loads(stream.getvalue().strip())
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "req-9"
    assert entry["trace_id"] == "ab" * 16
    assert entry["task_id"] == 5
    assert entry["service"] == "svc" and entry["level"] == "info"


async def test_middleware_generates_request_id_when_asked():
    app = FastAPI()

    @app.get("/ids")
    async def ids() -> list[str | None]:
        return list(current_ids())

    for generate in (False, True):
        wrapped = RequestContextMiddleware(app, generate_request_id=generate)
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            given = (await c.get("/ids", headers={"x-request-id": "given"})).json()
            none = (await c.get("/ids")).json()
        assert given[0] == "given"
        if generate:
            assert none[0] and len(none[0]) == 36
        else:
            assert none[0] is None
    assert current_ids() == (None, None)


async def test_debug_level_writes_one_access_line_per_request():
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {}

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(logging.DEBUG, service="s", version="v1", instance="i", stream=stream)
        transport = httpx.ASGITransport(app=RequestContextMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await c.get("/x", headers={"x-request-id": "r-7"})
            await c.get("/missing")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "taskmesh.access"]
    assert [(e["message"], e["status"]) for e in access] == [
        ("GET /x 200", 200),
        ("GET /missing 404", 404),
    ]
    assert access[0]["request_id"] == "r-7"
