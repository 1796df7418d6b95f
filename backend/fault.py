"""The fault toggle: make this replica fail or slow down on purpose, for mesh demos.

A fault applies to `/api/*` only. Probes, `/metrics` and `/admin/*` keep
answering, so what reacts is the mesh (retries, outlier ejection), not the
kubelet. A faulted response carries `x-fault-injected: true`.

Limits: status 500-599 (a fault is a server failure; 4xx would not trigger
outlier detection or retries), rates 0..1, delay 0..30000 ms (above the mesh's
5 s route timeout, below typical client patience).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DELAY_CAP_MS = 30_000
FAULT_HEADER = (b"x-fault-injected", b"true")


class FaultSpec(BaseModel):
    """The body of `PUT /admin/fault`, and the start-up fault from FAULT_* variables.

    `error_rate` defaults to 1 when only `status` is given, and `delay_rate` to 1
    when only `delay_ms` is given: `{"delay_ms": 2000}` means "delay every request".
    """

    # strict: "503" or false are refused (422), never coerced into a fault
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    status: int = Field(503, ge=500, le=599)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    delay_ms: int = Field(0, ge=0, le=DELAY_CAP_MS)
    delay_rate: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _implied_rates(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "status" in data and "error_rate" not in data:
                data["error_rate"] = 1.0
            if data.get("delay_ms") and "delay_rate" not in data:
                data["delay_rate"] = 1.0
        return data

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or (self.delay_rate > 0 and self.delay_ms > 0)


@dataclass
class FaultState:
    """The current fault of this process, and counters of what it injected."""

    spec: FaultSpec = field(default_factory=FaultSpec)
    injected_errors: int = 0
    injected_delays: int = 0
    counter: Counter | None = None
    rng: random.Random = field(default_factory=random.Random)

    def register(self, registry: CollectorRegistry, version: str) -> None:
        self.counter = Counter(
            "backend_faults_injected",
            "Faults injected by the fault toggle, by kind (error or delay).",
            ["kind", "version"],
            registry=registry,
        )
        self._errors = self.counter.labels("error", version)
        self._delays = self.counter.labels("delay", version)
        self._errors.inc(0)
        self._delays.inc(0)

    def view(self) -> dict[str, Any]:
        return {
            **self.spec.model_dump(),
            "active": self.spec.active,
            "injected": {"errors": self.injected_errors, "delays": self.injected_delays},
        }

    def roll_delay_ms(self) -> int:
        spec = self.spec
        if spec.delay_ms and spec.delay_rate and self.rng.random() < spec.delay_rate:
            self.injected_delays += 1
            if self.counter is not None:
                self._delays.inc()
            return spec.delay_ms
        return 0

    def roll_error(self) -> int | None:
        spec = self.spec
        if spec.error_rate and self.rng.random() < spec.error_rate:
            self.injected_errors += 1
            if self.counter is not None:
                self._errors.inc()
            return spec.status
        return None


class FaultMiddleware:
    """Pure-ASGI middleware applying the current fault to `/api/*` requests."""

    def __init__(self, app: ASGIApp, state: FaultState, router: Router | None = None):
        self.app = app
        self.state = state
        self.router = router

    def _label_route(self, scope: Scope) -> None:
        """Set scope["route"] as routing would, so metrics and spans name the faulted route."""
        if self.router is None:
            return
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                scope["route"] = route
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if not self.state.spec.active:
            await self.app(scope, receive, send)
            return
        delay_ms = self.state.roll_delay_ms()
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        status = self.state.roll_error()
        if status is not None:
            self._label_route(scope)
            body = json.dumps(
                {
                    "error": "fault_injected",
                    "message": f"fault injected by the fault toggle: HTTP {status}",
                    "status": status,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        FAULT_HEADER,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if not delay_ms:
            await self.app(scope, receive, send)
            return
        delay_header = (b"x-fault-delay-ms", str(delay_ms).encode())

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ())) + [FAULT_HEADER, delay_header]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_marked)
