"""Every backend response says which version and instance produced it (x-backend-version,
x-backend-instance): what the demos read to show where the mesh sent a request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class IdentityHeadersMiddleware:
    """Pure-ASGI: every response says which version and instance produced it."""

    def __init__(self, app: ASGIApp, version: str, instance: str):
        self.app = app
        self.headers = [
            (b"x-backend-version", version.encode()),
            (b"x-backend-instance", instance.encode("latin-1", "replace")),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_identity(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_identity)
