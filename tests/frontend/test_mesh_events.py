"""`GET /api/mesh/events`: the frontend in-process, the mesh's events API a real server.

Two stand-ins for the mesh's API, both real HTTP servers on loopback: the mesh's own
EventsApi over a real Events log (what `mesh up` serves), and a small aiohttp server that
records what it received and answers what a test tells it to (bad replies, a cut
connection, a slow answer).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
from aiohttp import web

from frontend import mesh_events
from frontend.settings import FrontendSettings
from mesh.loop.api import EventsApi
from mesh.loop.events import Events
from telemetry.propagation import FORWARDED_HEADERS
from telemetry.settings import SettingsError
from tests.support.procs import free_port

from .conftest import FrontendFactory

PATH = "/api/mesh/events"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class StandIn:
    """An HTTP server playing the mesh's events API (at /events) and the backend (/api/*)."""

    url: str = ""
    status: int = 200
    body: bytes = b'{"events": []}'
    delay_s: float = 0.0
    drop: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.received.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "peer": peer,
            }
        )
        if request.path.startswith("/api/"):
            body = {"version": "v1", "instance": "backend-v1-0", "tasks": []}
            return web.json_response(body, headers={"x-backend-version": "v1"})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow mesh API, not a test wait
        if self.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        return web.Response(status=self.status, body=self.body, content_type="application/json")


@pytest.fixture(name="stand_in")
async def _stand_in() -> AsyncIterator[StandIn]:
    stand_in = StandIn()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", stand_in.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stand_in.url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


@pytest.fixture(name="events_api")
def _events_api() -> Iterator[EventsApi]:
    """The mesh's own read-only events API over a real in-memory event log."""
    api = EventsApi(Events(None))
    api.start()
    try:
        yield api
    finally:
        api.stop()


def nowhere() -> str:
    """An events URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/events"


async def test_proxies_the_mesh_events_after_a_time(
    make_frontend: FrontendFactory, events_api: EventsApi
) -> None:
    log = events_api.events
    applied = log.normal("Applied", "generation/1", "12 objects from k8s")
    exited = log.warning("Exited", "backend-v1-0", "killed by SIGKILL")
    restarted = log.normal("Restarted", "backend-v1-0", "after SIGKILL (restart 1, pid 42)")
    url = f"{events_api.url}/events"
    async with make_frontend(nowhere(), mesh_events_url=url) as frontend:
        r = await frontend.get(PATH, params={"after": "0"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "events": [asdict(applied), asdict(exited), asdict(restarted)],
            "enabled": True,
        }
        assert r.headers["cache-control"] == "no-store"
        # the page sends the time of the last event it has: only newer ones come back
        r = await frontend.get(PATH, params={"after": repr(exited.time)})
        assert r.json() == {"events": [asdict(restarted)], "enabled": True}
        r = await frontend.get(PATH, params={"after": repr(restarted.time)})
        assert r.json() == {"events": [], "enabled": True}
        # no `after`: everything the mesh keeps
        r = await frontend.get(PATH)
        assert [e["reason"] for e in r.json()["events"]] == ["Applied", "Exited", "Restarted"]


async def test_unset_means_disabled_not_an_error(make_frontend: FrontendFactory) -> None:
    async with make_frontend(nowhere()) as frontend:
        r = await frontend.get(PATH, params={"after": "1764490000.5"})
    assert r.status_code == 200
    assert r.json() == {"events": [], "enabled": False}


async def test_sends_no_backend_routing_headers_and_shares_the_backend_pool(
    make_frontend: FrontendFactory, stand_in: StandIn
) -> None:
    sent = {name: f"value-of-{name}" for name in FORWARDED_HEADERS}
    sent.update({"traceparent": TRACEPARENT, "x-canary": "true", "idempotency-key": "k"})
    url = f"{stand_in.url}/events"
    async with make_frontend(stand_in.url, mesh_events_url=url) as frontend:
        assert (await frontend.get("/api/tasks", headers=sent)).status_code == 200
        r = await frontend.get(PATH, params={"after": "1764490000.25"}, headers=sent)
    assert r.status_code == 200, r.text
    backend_call, events_call = stand_in.received
    assert events_call["path"] == "/events"
    assert events_call["query"] == {"after": "1764490000.25"}
    forwarded = set(FORWARDED_HEADERS) | {"idempotency-key", "tracestate"}
    assert not forwarded & set(events_call["headers"]), events_call["headers"]
    # The backend call did carry them: the difference is the route's, not the test's.
    assert backend_call["headers"]["x-canary"] == "true"
    # One shared client: the events call went over the backend call's kept-alive connection.
    assert events_call["peer"] == backend_call["peer"]


@pytest.mark.parametrize("after", ["abc", "", "nan", "inf", "-1", "1e999", "0x10"])
@pytest.mark.parametrize("enabled", [True, False])
async def test_a_bad_after_is_a_422_naming_the_field(
    make_frontend: FrontendFactory, stand_in: StandIn, after: str, enabled: bool
) -> None:
    url = f"{stand_in.url}/events" if enabled else None
    async with make_frontend(nowhere(), mesh_events_url=url) as frontend:
        r = await frontend.get(PATH, params={"after": after})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["message"].startswith("after: ")
    assert body["fields"] == [{"field": "after", "message": body["message"][len("after: ") :]}]
    assert stand_in.received == []  # refused before any call


async def test_unreachable_mesh_api_is_a_503_with_the_cause(
    make_frontend: FrontendFactory,
) -> None:
    url = nowhere()
    async with make_frontend(nowhere(), mesh_events_url=url) as frontend:
        r = await frontend.get(PATH, params={"after": "0"})
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "mesh_events_unavailable" and body["cause"] == "refused"
    assert url in body["message"] and "Traceback" not in r.text
    assert r.headers["content-type"] == "application/json"


async def test_a_cut_connection_is_a_503(make_frontend: FrontendFactory, stand_in: StandIn) -> None:
    stand_in.drop = True
    async with make_frontend(nowhere(), mesh_events_url=f"{stand_in.url}/events") as frontend:
        r = await frontend.get(PATH)
    assert r.status_code == 503, r.text
    assert r.json()["cause"] == "disconnected"


async def test_a_slow_mesh_api_is_a_503_timeout(
    make_frontend: FrontendFactory, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mesh_events, "TIMEOUT_S", 0.3)
    stand_in.delay_s = 5.0
    async with make_frontend(nowhere(), mesh_events_url=f"{stand_in.url}/events") as frontend:
        r = await frontend.get(PATH)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["cause"] == "timeout" and "0.3 s" in body["message"]


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (500, b"Internal Server Error", "HTTP 500"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, json.dumps({"items": []}).encode(), "without an events list"),
        (200, json.dumps({"events": {"a": 1}}).encode(), "without an events list"),
    ],
)
async def test_a_reply_that_is_not_an_events_list_is_a_502(
    make_frontend: FrontendFactory, stand_in: StandIn, status: int, body: bytes, says: str
) -> None:
    stand_in.status, stand_in.body = status, body
    async with make_frontend(nowhere(), mesh_events_url=f"{stand_in.url}/events") as frontend:
        r = await frontend.get(PATH)
    assert r.status_code == 502, r.text
    reply = r.json()
    assert reply["error"] == "mesh_events_bad_reply" and says in reply["message"]


def test_the_setting_is_read_from_mesh_events_url() -> None:
    url = "http://127.0.0.1:44339/events"
    assert FrontendSettings.from_env({"MESH_EVENTS_URL": url}).mesh_events_url == url
    assert FrontendSettings.from_env({}).mesh_events_url is None
    assert FrontendSettings.from_env({"MESH_EVENTS_URL": ""}).mesh_events_url is None
    for bad in ("127.0.0.1:44339/events", "ftp://127.0.0.1/events", "http://127.0.0.1:99999/"):
        with pytest.raises(SettingsError, match="MESH_EVENTS_URL"):
            FrontendSettings.from_env({"MESH_EVENTS_URL": bad})
