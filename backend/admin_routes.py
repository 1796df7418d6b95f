"""The operator's controls of one backend replica: the fault toggle (errors and delays on
demand, for the traffic demos) and the readiness and liveness flags (take it out of
rotation, or get it restarted), each with a GET to read it back.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.bodies import LiveBody, ReadyBody, parse_body
from backend.fault import FaultSpec
from backend.state import BackendState

log = logging.getLogger("backend")


def add_admin_routes(app: FastAPI, state: BackendState, doc: dict[str, dict[str, Any]]) -> None:
    """/admin/fault, /admin/ready and /admin/live on APP; DOC: each route's OpenAPI."""
    settings = state.settings

    @app.get("/admin/fault", **doc["GET /admin/fault"])
    async def get_fault() -> JSONResponse:
        return JSONResponse(state.fault.view())

    @app.put("/admin/fault", **doc["PUT /admin/fault"])
    async def put_fault(request: Request) -> JSONResponse:
        spec = parse_body(FaultSpec, await request.body(), settings.version)
        assert isinstance(spec, FaultSpec)
        state.fault.spec = spec
        log.warning("fault set", extra={"fault": spec.model_dump()})
        return JSONResponse(state.fault.view())

    @app.delete("/admin/fault", **doc["DELETE /admin/fault"])
    async def clear_fault() -> JSONResponse:
        state.fault.spec = FaultSpec()
        log.info("fault cleared")
        return JSONResponse(state.fault.view())

    @app.get("/admin/ready", **doc["GET /admin/ready"])
    async def get_ready() -> JSONResponse:
        return JSONResponse({"ready": state.ready})

    @app.put("/admin/ready", **doc["PUT /admin/ready"])
    async def put_ready(request: Request) -> JSONResponse:
        body = parse_body(ReadyBody, await request.body(), settings.version)
        assert isinstance(body, ReadyBody)
        state.ready = body.ready
        log.warning("readiness set", extra={"ready": body.ready})
        return JSONResponse({"ready": state.ready})

    @app.get("/admin/live", **doc["GET /admin/live"])
    async def get_live() -> JSONResponse:
        return JSONResponse({"live": state.live})

    @app.put("/admin/live", **doc["PUT /admin/live"])
    async def put_live(request: Request) -> JSONResponse:
        body = parse_body(LiveBody, await request.body(), settings.version)
        assert isinstance(body, LiveBody)
        state.live = body.live
        log.warning("liveness set", extra={"live": body.live})
        return JSONResponse({"live": state.live})
