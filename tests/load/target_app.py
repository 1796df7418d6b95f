"""A tiny ASGI server with known behaviour, for the load tool's real-process tests.

Run as ``uvicorn --app-dir tests/load target_app:app``. Calls are counted per
path, so each test uses its own path and never sees another test's calls.

- ``/mix...``: every third call is a 503 with ``x-envoy-overloaded: true``; the
  others are 200 with ``x-backend-version`` alternating v1, v2 and
  ``x-backend-instance`` cycling i0..i3.
- ``/close...``: 200 with ``Connection: close`` (one connection per request).
- ``/frontend...``: 200 JSON ``{"backend": {"version": "v2", "instance": "backend-v2-0"}}``
  and no ``x-backend-*`` headers, like the frontend.
- ``/slow...?ms=N``: 200 after N milliseconds.
- ``/count?path=P``: ``{"calls": n}``, how many calls P got.
- ``/readyz``: 200.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

calls: Counter[str] = Counter()
ok_calls: Counter[str] = Counter()


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    query = parse_qs(scope.get("query_string", b"").decode())
    text = [(b"content-type", b"text/plain")]
    if path == "/readyz":
        await _send(send, 200, b"ok", text)
        return
    if path == "/count":
        body = json.dumps({"calls": calls[query.get("path", [""])[0]]}).encode()
        await _send(send, 200, body, [(b"content-type", b"application/json")])
        return
    calls[path] += 1
    n = calls[path]
    if path.startswith("/mix"):
        if n % 3 == 0:
            await _send(send, 503, b"overflow", [*text, (b"x-envoy-overloaded", b"true")])
            return
        k = ok_calls[path]
        ok_calls[path] += 1
        version = b"v1" if k % 2 == 0 else b"v2"
        instance = f"i{k % 4}".encode()
        headers = [*text, (b"x-backend-version", version), (b"x-backend-instance", instance)]
        await _send(send, 200, b"ok", headers)
    elif path.startswith("/close"):
        await _send(send, 200, b"bye", [*text, (b"connection", b"close")])
    elif path.startswith("/frontend"):
        body = json.dumps({"backend": {"version": "v2", "instance": "backend-v2-0"}}).encode()
        await _send(send, 200, body, [(b"content-type", b"application/json")])
    elif path.startswith("/slow"):
        await asyncio.sleep(int(query.get("ms", ["1000"])[0]) / 1000)  # the behaviour under test
        await _send(send, 200, b"late", text)
    else:
        await _send(send, 404, b"no such path", text)
