"""`GET /api/mesh/events?after=T`: the local mesh's events, for the page's chart markers
and its rollout panel (the events of `mesh rollout`, with their `data`).

`mesh up` serves what its control loop did (restarts, generations of config applied or
refused) on loopback and hands every workload the URL as MESH_EVENTS_URL. The page
cannot call that URL itself (another port, and only the frontend's host can reach it),
so the frontend proxies it through its one shared HTTP client. In a Kubernetes cluster
the variable is unset: the route answers `enabled: false` and the page draws no markers.

    200 {"events": [{time, type, reason, object, message, data}, ...], "enabled": true}
    200 {"events": [], "enabled": false}          MESH_EVENTS_URL unset
    422 validation_error naming `after`           not a finite unix time >= 0
    503 mesh_events_unavailable with a cause      refused | timeout | disconnected
    502 mesh_events_bad_reply                     a reply that is not {"events": [...]}
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse

from frontend.client import BackendClient, SideCallError

PATH = "/api/mesh/events"
#: The mesh's API is a thread of `mesh up` on loopback: a few seconds is plenty even on a
#: loaded machine, and the page polls again a second later anyway.
TIMEOUT_S = 5.0


class InvalidAfter(ValueError):
    """An `after` that is not a unix time in seconds; the message names the field."""


def parse_after(raw: str | None) -> float:
    """The `after` query parameter: a finite number of seconds >= 0 (absent: 0, all)."""
    if raw is None:
        return 0.0
    try:
        after = float(raw)
    except ValueError:
        after = math.nan
    if not math.isfinite(after) or after < 0:
        raise InvalidAfter(f"{raw!r} is not a unix time in seconds (a finite number >= 0)")
    return after


def invalid_after(exc: InvalidAfter) -> JSONResponse:
    message = str(exc)
    return JSONResponse(
        {
            "error": "validation_error",
            "message": f"after: {message}",
            "fields": [{"field": "after", "message": message}],
        },
        422,
    )


async def mesh_events(
    client: BackendClient, url: str | None, raw_after: str | None
) -> JSONResponse:
    """The answer of the route: URL is the MESH_EVENTS_URL setting (None: unset)."""
    try:
        after = parse_after(raw_after)
    except InvalidAfter as exc:
        return invalid_after(exc)
    headers = {"cache-control": "no-store"}
    if url is None:
        return JSONResponse({"events": [], "enabled": False}, headers=headers)
    try:
        status, data = await client.get_json(
            url, params={"after": repr(after)}, timeout_s=TIMEOUT_S
        )
    except SideCallError as exc:
        return _problem(503, "mesh_events_unavailable", exc.cause, exc.message, headers)
    events = data.get("events") if isinstance(data, dict) else None
    if status != 200 or not isinstance(events, list):
        if status != 200:
            what = f"HTTP {status}"
        elif data is None:
            what = "a body that is not JSON"
        else:
            what = "JSON without an events list"
        message = f"the mesh's events API at {url} answered {what}"
        return _problem(502, "mesh_events_bad_reply", "bad_reply", message, headers)
    return JSONResponse({"events": events, "enabled": True}, headers=headers)


def _problem(
    status: int, error: str, cause: str, message: str, headers: dict[str, str]
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "cause": cause, "message": message, "enabled": True}
    return JSONResponse(body, status, headers=headers)
