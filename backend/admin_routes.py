"""The operator's controls of one backend replica: the fault toggle (errors and delays on
demand, for the traffic demos) and the readiness and liveness flags (take it out of
rotation, or get it restarted), each with a GET to read it back.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

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

    _add_flag_routes(app, state, doc, "ready", ReadyBody, "readiness set")
    _add_flag_routes(app, state, doc, "live", LiveBody, "liveness set")


def _add_flag_routes(
    app: FastAPI,
    state: BackendState,
    doc: dict[str, dict[str, Any]],
    flag: Literal["ready", "live"],
    model: type[ReadyBody | LiveBody],
    logged: str,
) -> None:
    """GET and PUT /admin/FLAG: read back or set `state.FLAG` (MODEL is the PUT body).

    Readiness and liveness differ only in these names, so one pair of handlers serves
    both. The routes are named get_FLAG and put_FLAG, as the handlers once were: FastAPI
    derives each route's OpenAPI operationId and summary from that name."""
    path = f"/admin/{flag}"
    version = state.settings.version

    async def get_flag() -> JSONResponse:
        return JSONResponse({flag: getattr(state, flag)})

    async def put_flag(request: Request) -> JSONResponse:
        body = parse_body(model, await request.body(), version)
        assert isinstance(body, model)
        value: bool = getattr(body, flag)
        setattr(state, flag, value)
        log.warning(logged, extra={flag: value})
        return JSONResponse({flag: getattr(state, flag)})

    app.get(path, name=f"get_{flag}", **doc[f"GET {path}"])(get_flag)
    app.put(path, name=f"put_{flag}", **doc[f"PUT {path}"])(put_flag)
