"""telemetry.errors: the 404, 405 and 500 replies both services share."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from telemetry.errors import install_common_handlers

LOG = logging.getLogger("test-errors")


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/items")
    async def add() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("secret detail")

    install_common_handlers(app, LOG)
    return app


async def get(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=tiny_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


async def test_unknown_route_is_a_json_404() -> None:
    r = await get("GET", "/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "Not Found"}


async def test_wrong_method_is_a_json_405_naming_every_method() -> None:
    r = await get("DELETE", "/items")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}


async def test_unexpected_error_is_a_500_naming_only_the_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        r = await get("GET", "/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "message": "internal error: KeyError"}
    assert "secret detail" not in r.text
    assert any("unhandled error on GET /boom" in rec.getMessage() for rec in caplog.records)
