"""A stand-in for a running local mesh, to exercise mesh.demos without Envoy.

One ASGI app plays three roles; run it as ``uvicorn --app-dir tests/load standin_mesh:app``.

- The mesh's entry (``/api/tasks``): ``x-canary: true`` -> v2, else v1. While a
  fault is on and the host is not yet ejected, 503 with ``x-fault-injected``;
  after 3 such 503s the host counts as ejected and answers come from the
  healthy hosts again (what Envoy's outlier detection does).
- ``/breaker``: a circuit breaker of one: a request arriving while another is
  in flight gets 503 ``x-envoy-overloaded`` and counts as a pending overflow.
- A replica's fault toggle: ``PUT|GET|DELETE /admin/fault``.
- Envoy's admin: ``/stats?filter=REGEX`` and ``/clusters`` (text), with the
  counters above under the backend cluster's name.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

BACKEND = "outbound|5000|v1|backend-service.default.svc.cluster.local"
FRONTEND = "outbound|8000||frontend-service.default.svc.cluster.local"
EJECT_AFTER = 3

state: dict[str, Any] = {"fault": None, "fault_5xx": 0, "ejected": 0, "inflight": 0, "overflow": 0}


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _stats() -> list[str]:
    remaining = max(0, 1 - state["inflight"])
    return [
        f"cluster.{BACKEND}.upstream_rq_pending_overflow: {state['overflow']}",
        f"cluster.{BACKEND}.circuit_breakers.default.remaining_pending: {remaining}",
        f"cluster.{BACKEND}.outlier_detection.ejections_active: {state['ejected']}",
        f"cluster.{BACKEND}.upstream_rq_time: P0(nan,1) P25(nan,2)",
        f"cluster.{FRONTEND}.upstream_rq_pending_overflow: 7",
        f"cluster.{FRONTEND}.outlier_detection.ejections_active: 0",
        "server.live: 1",
    ]


def _clusters() -> str:
    flags = "/failed_outlier_check" if state["ejected"] else "healthy"
    return "\n".join(
        [
            f"{BACKEND}::default_priority::max_connections::1",
            f"{BACKEND}::127.0.0.1:5001::cx_active::0",
            f"{BACKEND}::127.0.0.1:5001::health_flags::{flags}",
            f"{BACKEND}::127.0.0.1:5002::health_flags::healthy",
            f"{FRONTEND}::127.0.0.1:8001::health_flags::healthy",
        ]
    )


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    query = parse_qs(scope.get("query_string", b"").decode())
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    text = [(b"content-type", b"text/plain")]
    js = [(b"content-type", b"application/json")]
    if path == "/readyz":
        await _send(send, 200, b"ok", text)
    elif path == "/stats":
        pattern = re.compile(query.get("filter", [""])[0])
        lines = [line for line in _stats() if pattern.search(line.rpartition(": ")[0])]
        await _send(send, 200, "\n".join(lines).encode(), text)
    elif path == "/clusters":
        await _send(send, 200, _clusters().encode(), text)
    elif path == "/admin/fault":
        if method == "PUT":
            state["fault"] = json.loads(await _body(receive))
        elif method == "DELETE":
            state.update(fault=None, fault_5xx=0, ejected=0)
        await _send(send, 200, json.dumps({"fault": state["fault"]}).encode(), js)
    elif path == "/breaker":
        if state["inflight"] >= 1:
            state["overflow"] += 1
            await _send(send, 503, b"overflow", [*text, (b"x-envoy-overloaded", b"true")])
            return
        state["inflight"] += 1
        try:
            await asyncio.sleep(0.01)  # hold the one slot, as a slow upstream does
        finally:
            state["inflight"] -= 1
        await _send(send, 200, b"ok", [*text, (b"x-backend-version", b"v1")])
    elif path == "/api/tasks":
        if state["fault"] and not state["ejected"]:
            state["fault_5xx"] += 1
            if state["fault_5xx"] >= EJECT_AFTER:
                state["ejected"] = 1
            status = int(state["fault"]["status"])
            await _send(send, status, b"fault", [*text, (b"x-fault-injected", b"true")])
            return
        version = b"v2" if headers.get("x-canary") == "true" else b"v1"
        await _send(send, 200, b"{}", [*js, (b"x-backend-version", version)])
    else:
        await _send(send, 404, b"no such path", text)
