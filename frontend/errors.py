"""What went wrong with a backend call, in a form a person can act on.

Each failure has a `cause` and an HTTP status that says why:

    cause                status  when
    circuit_open         503     the mesh refused the call: reply has x-envoy-overloaded
    no_healthy_upstream  503     the mesh has no backend to send to (all ejected/unready)
    timeout              504     no reply in time (ours, or Envoy's "upstream request timeout")
    refused              502     could not connect (refused, unresolvable, reset before headers)
    bad_reply            502     connection dropped mid-reply, or a reply that is not HTTP/JSON
    store_unavailable    503     the backend answered, but its task store (database) is down
    backend_error        502/503 the backend's own 5xx (503 stays 503; others become 502)

No retries happen here: retrying is the mesh's job (VirtualService retries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CAUSE_STATUS = {
    "circuit_open": 503,
    "no_healthy_upstream": 503,
    "timeout": 504,
    "refused": 502,
    "bad_reply": 502,
    "store_unavailable": 503,
}

CAUSE_WORDS = {
    "circuit_open": "circuit open: the mesh refused the call because the backend's connection "
    "pool is full (x-envoy-overloaded)",
    "no_healthy_upstream": "no healthy upstream: every backend instance is ejected or not ready",
    "timeout": "timeout: the backend did not answer in time",
    "refused": "connection refused: nothing accepted the connection to the backend",
    "bad_reply": "bad reply: the backend dropped the connection or answered with something "
    "that is not a valid reply",
    "backend_error": "backend error: the backend answered with a server error",
    "store_unavailable": "store unavailable: the backend cannot reach its task store (database)",
}

SUMMARY_CHARS = 200


@dataclass
class BackendFailure(Exception):
    """A failed backend call; `to_json()` is the body the frontend answers with."""

    cause: str
    message: str
    status: int
    backend_status: int | None = None
    backend_body: str | None = None
    backend: dict[str, str | None] = field(default_factory=dict)
    fault_injected: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def words(self) -> str:
        return CAUSE_WORDS.get(self.cause, self.cause)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error": "backend_failure",
            "cause": self.cause,
            "message": self.message,
        }
        if self.backend_status is not None:
            out["backend_status"] = self.backend_status
        if self.backend_body:
            out["backend_body"] = self.backend_body
        if self.fault_injected:
            out["fault_injected"] = True
        if self.backend:
            out["backend"] = self.backend
        return out


def failure(cause: str, message: str, **kwargs: Any) -> BackendFailure:
    return BackendFailure(cause, message, CAUSE_STATUS[cause], **kwargs)


def _body_cause(body: bytes) -> str | None:
    """The top-level `cause` of a JSON error body (the services' error shape), if any."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    cause = data.get("cause") if isinstance(data, dict) else None
    return cause if isinstance(cause, str) else None


def summarise(body: bytes) -> str:
    """A short, one-line account of an error body: its JSON `message`, else its text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            if isinstance(data.get(key), str):
                text = data[key]
                break
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def classify_reply(
    status: int, headers: dict[str, str], body: bytes, backend: dict[str, str | None]
) -> BackendFailure | None:
    """The failure a 5xx reply stands for (None for a reply to pass on as it is)."""
    if status < 500:
        return None
    summary = summarise(body)
    common: dict[str, Any] = {
        "backend_status": status,
        "backend_body": summary,
        "backend": backend,
        "fault_injected": headers.get("x-fault-injected") == "true",
    }
    if status == 503 and headers.get("x-envoy-overloaded") == "true":
        return failure("circuit_open", "the mesh's circuit breaker is open", **common)
    lowered = summary.lower()
    if status == 503 and lowered.startswith("no healthy upstream"):
        return failure("no_healthy_upstream", "no healthy backend instance", **common)
    if status == 504 and lowered.startswith("upstream request timeout"):
        return failure("timeout", "the mesh's route timeout expired", **common)
    if status == 503 and _body_cause(body) == "store_unavailable":
        return failure("store_unavailable", "the backend's task store is unreachable", **common)
    if lowered.startswith("upstream connect error"):
        # Envoy's text: "... reset reason: connection failure" (could not connect) or
        # "... reset reason: connection termination" (dropped after connecting).
        if "connection failure" in lowered or "refused" in lowered:
            return failure("refused", "the mesh could not connect to the backend", **common)
        return failure("bad_reply", "the backend dropped the connection", **common)
    return BackendFailure(
        "backend_error",
        f"the backend answered {status}: {summary}",
        503 if status == 503 else 502,
        **common,
    )
