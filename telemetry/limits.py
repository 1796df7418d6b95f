"""Refuse oversized requests before any parsing: headers with a JSON 431, bodies with a 413.

Envoy refuses headers over 60 KiB in front of the apps, but a caller on the apps'
own port bypasses it (and uvicorn's httptools parser has no header cap), so the
apps keep a limit of their own."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Pure-ASGI: buffer bodies of write requests up to `limit` bytes, 413 beyond.

    Checks Content-Length first, then counts what actually arrives (chunked
    bodies have no length). The buffered body is replayed to the app.
    """

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, header_limit: int = MAX_HEADER_BYTES
    ):
        self.app = app
        self.limit = limit
        self.header_limit = header_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
            if header_bytes > self.header_limit:
                await _refuse(
                    send,
                    431,
                    "headers_too_large",
                    f"headers: larger than {self.header_limit} bytes",
                    self.header_limit,
                )
                return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self._refuse(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await _refuse(
            send, 413, "body_too_large", f"body: larger than {self.limit} bytes", self.limit
        )


async def _refuse(send: Send, status: int, error: str, message: str, limit: int) -> None:
    body = json.dumps({"error": error, "message": message, "limit_bytes": limit}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
