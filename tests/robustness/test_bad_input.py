"""Bad input gets a clear 4xx (JSON where the app answers) and changes nothing.

A real backend and a frontend in front of it, each a process on a free port. Every
case counts the tasks (and reads the fault toggle) before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.runner import LocalMesh
from telemetry.limits import MAX_BODY_BYTES
from telemetry.propagation import FORWARDED_HEADERS
from tests.support.procs import VENV_BIN, free_port, running, start, wait_http_ok

pytestmark = pytest.mark.integration

# Envoy's default max_request_headers_kb (60 KiB): the mesh refuses bigger headers
ENVOY_HEADER_LIMIT = 60 * 1024


@dataclass
class Services:
    backend: str
    frontend: str


@pytest.fixture(scope="module", name="services")
def _services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    b_port, f_port = free_port(), free_port()
    backend = start(
        "backend",
        [str(VENV_BIN / "backend")],
        tmp,
        {"PORT": str(b_port), "HOST": "127.0.0.1", "TASKS_DB": str(tmp / "tasks.db")},
        b_port,
    )
    frontend = start(
        "frontend",
        [str(VENV_BIN / "frontend")],
        tmp,
        {"PORT": str(f_port), "HOST": "127.0.0.1", "BACKEND_URL": backend.url},
        f_port,
    )
    with running([backend, frontend]):
        wait_http_ok(backend)
        wait_http_ok(frontend)
        yield Services(backend.url, frontend.url)


@pytest.fixture(autouse=True)
def _no_fault_left(services: Services) -> Iterator[None]:
    """A refused setting that was wrongly taken must fail its own test only."""
    yield
    httpx.delete(f"{services.backend}/admin/fault", timeout=10)
    httpx.put(f"{services.backend}/admin/ready", json={"ready": True}, timeout=10)


def snapshot(services: Services) -> tuple[Any, Any]:
    """What bad input must not change: every task, and the fault toggle."""
    with httpx.Client(timeout=10) as client:
        tasks = client.get(f"{services.backend}/api/tasks").json()["tasks"]
        fault = client.get(f"{services.backend}/admin/fault").json()
    return tasks, fault


def assert_clear_error(reply: httpx.Response, status: int, mentions: str = "") -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert mentions in body["message"], body


JSON_HEADERS = {"content-type": "application/json"}
TITLE_CASES = [
    # (body bytes, status, what the message names)
    (b"{not json", 400, "malformed JSON"),
    (b'{"title": ', 400, "malformed JSON"),
    (b"", 422, ""),
    (b"[]", 422, ""),
    (b'"just a string"', 422, ""),
    (b'{"title": 5}', 422, "title"),
    (b'{"title": null}', 422, "title"),
    (b'{"title": ["a"]}', 422, "title"),
    (b'{"title": "   "}', 422, "title"),
    (json.dumps({"title": "x" * 201}).encode(), 422, "title"),
    (b'{"title": "ok", "owner": "me"}', 422, "owner"),
    (b'{"title": "ok", "priority": "urgent"}', 422, "priority"),
]


@pytest.mark.parametrize("via", ["backend", "frontend"])
@pytest.mark.parametrize(("body", "status", "mentions"), TITLE_CASES)
def test_a_bad_task_body_is_refused_and_changes_nothing(
    services: Services, via: str, body: bytes, status: int, mentions: str
) -> None:
    before = snapshot(services)
    url = f"{getattr(services, via)}/api/tasks"
    reply = httpx.post(url, content=body, headers=JSON_HEADERS, timeout=10)
    assert_clear_error(reply, status, mentions)
    assert snapshot(services) == before


@pytest.mark.parametrize("via", ["backend", "frontend"])
@pytest.mark.parametrize(
    "body",
    [b'{"done": "yes"}', b'{"done": null}', b"{}", b'{"title": 1}', b'{"id": 7}', b"{oops"],
    ids=["done-string", "done-null", "empty", "title-int", "id", "malformed"],
)
def test_a_bad_patch_is_refused_and_changes_nothing(
    services: Services, via: str, body: bytes
) -> None:
    before = snapshot(services)
    task_id = before[0][0]["id"]
    url = f"{getattr(services, via)}/api/tasks/{task_id}"
    reply = httpx.patch(url, content=body, headers=JSON_HEADERS, timeout=10)
    assert reply.status_code in (400, 422), reply.text
    assert_clear_error(reply, reply.status_code)
    assert snapshot(services) == before


@pytest.mark.parametrize("via", ["backend", "frontend"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_413_and_changes_nothing(
    services: Services, via: str, chunked: bool
) -> None:
    before = snapshot(services)
    payload = json.dumps({"title": "x" * (MAX_BODY_BYTES + 10)}).encode()
    content: Any = iter([payload]) if chunked else payload  # an iterator is sent chunked
    reply = httpx.post(
        f"{getattr(services, via)}/api/tasks", content=content, headers=JSON_HEADERS, timeout=10
    )
    assert_clear_error(reply, 413, "body")
    assert snapshot(services) == before


@pytest.mark.parametrize("via", ["backend", "frontend"])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/route", 404),
        ("POST", "/api/nothing", 404),
        ("GET", "/api/tasks/999999999", 404),
        ("GET", "/api/tasks/not-a-number", 422),
        ("DELETE", "/api/tasks/-1", 422),
        ("GET", f"/api/tasks/{2**64}", 422),
        ("PUT", "/api/tasks", 405),
        ("DELETE", "/api/tasks", 405),
    ],
)
def test_unknown_routes_and_bad_ids_are_clear_4xx(
    services: Services, via: str, method: str, path: str, status: int
) -> None:
    before = snapshot(services)
    reply = httpx.request(method, f"{getattr(services, via)}{path}", timeout=10)
    assert_clear_error(reply, status)
    if status == 405:
        allowed = {m.strip() for m in reply.headers["allow"].split(",")}
        assert {"GET", "POST"} <= allowed
    assert snapshot(services) == before


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        ({"status": 200}, 422, "status"),
        ({"status": 600}, 422, "status"),
        ({"status": "503"}, 422, "status"),
        ({"error_rate": 1.5}, 422, "error_rate"),
        ({"error_rate": -0.1}, 422, "error_rate"),
        ({"delay_ms": -5}, 422, "delay_ms"),
        ({"delay_ms": 10**9}, 422, "delay_ms"),
        ({"delay_rate": "often"}, 422, "delay_rate"),
        ({"status": 503, "colour": "red"}, 422, "colour"),
        ([503], 422, ""),
    ],
)
def test_invalid_fault_settings_are_422_and_change_nothing(
    services: Services, body: Any, status: int, mentions: str
) -> None:
    before = snapshot(services)
    reply = httpx.put(f"{services.backend}/admin/fault", json=body, timeout=10)
    assert_clear_error(reply, status, mentions)
    assert snapshot(services) == before


@pytest.mark.parametrize(
    "body", [b"{bad", b'{"ready": "no"}', b'{"ready": 0}', b"{}", b'{"ready": false, "x": 1}']
)
def test_invalid_readiness_settings_are_refused(services: Services, body: bytes) -> None:
    reply = httpx.put(
        f"{services.backend}/admin/ready", content=body, headers=JSON_HEADERS, timeout=10
    )
    assert reply.status_code in (400, 422), reply.text
    assert_clear_error(reply, reply.status_code)
    assert httpx.get(f"{services.backend}/readyz", timeout=10).status_code == 200


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there"], ids=["empty", "long", "control"])
def test_a_bad_idempotency_key_is_400_and_creates_nothing(services: Services, key: str) -> None:
    before = snapshot(services)
    reply = httpx.post(
        f"{services.backend}/api/tasks",
        json={"title": "keyed"},
        headers={"Idempotency-Key": key},
        timeout=10,
    )
    assert_clear_error(reply, 400, "Idempotency-Key")
    assert snapshot(services) == before


def test_a_reused_idempotency_key_with_another_body_is_422(services: Services) -> None:
    url = f"{services.frontend}/api/tasks"
    headers = {"Idempotency-Key": "reused-key-for-bad-input"}
    first = httpx.post(url, json={"title": "first"}, headers=headers, timeout=10)
    assert first.status_code == 201
    before = snapshot(services)
    other = httpx.post(url, json={"title": "other"}, headers=headers, timeout=10)
    assert_clear_error(other, 422, "Idempotency-Key")
    assert snapshot(services) == before


# -- headers the frontend forwards: the documented list only


HOSTILE = {
    "host": "evil.example",
    "connection": "keep-alive, x-hop-named",
    "keep-alive": "timeout=99",
    "x-hop-named": "named in Connection",
    "te": "trailers",
    "trailer": "x-later",
    "proxy-authorization": "Basic c2VjcmV0",
    "proxy-connection": "keep-alive",
    "proxy-authenticate": "Basic",
    "authorization": "Bearer not-for-the-backend",
    "cookie": "session=not-for-the-backend",
    "x-arbitrary": "not forwarded",
    "x-forwarded-for": "203.0.113.9",
}


def test_the_frontend_forwards_only_the_documented_headers(services: Services) -> None:
    documented = {name: f"value-of-{name}" for name in FORWARDED_HEADERS}
    # trace headers must parse to be kept as sent, so send valid ones
    documented["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    documented["x-b3-traceid"] = "0af7651916cd43dd8448eb211c80319c"
    documented["x-b3-spanid"] = "b7ad6b7169203331"
    reply = httpx.get(
        f"{services.frontend}/api/headers", headers={**HOSTILE, **documented}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    got = {k.lower(): v for k, v in reply.json()["backend"]["headers"].items()}
    for name in ("x-request-id", "baggage", "x-canary", "x-ot-span-context"):
        assert got.get(name) == documented[name], (name, got)
    for name, value in HOSTILE.items():
        assert got.get(name) != value, (name, got)
    assert got["host"] == services.backend.removeprefix("http://")
    for name in ("keep-alive", "te", "trailer", "x-hop-named", "proxy-authorization"):
        assert name not in got, (name, got)
    for name in ("proxy-connection", "proxy-authenticate", "authorization", "cookie"):
        assert name not in got, (name, got)
    assert "x-arbitrary" not in got and "x-forwarded-for" not in got
    # nothing the client did not need besides the documented list and the client's own
    own = {"host", "accept", "accept-encoding", "user-agent", "content-length", "connection"}
    extra = set(got) - set(FORWARDED_HEADERS) - own
    assert not extra, extra


def test_huge_headers_are_refused_by_the_mesh_with_431(tmp_path: Path) -> None:
    """The apps' HTTP parser (httptools) has no header limit; Envoy, in front of every
    workload in the mesh, refuses more than max_request_headers_kb (60 KiB) with 431."""
    from tests.robustness.conftest import k8s_mesh

    with k8s_mesh(tmp_path / "state") as mesh:
        url = f"{mesh.gateway_url}/api/tasks"
        before = httpx.get(url, timeout=10).json()["tasks"]
        huge = {"x-huge": "h" * (ENVOY_HEADER_LIMIT + 1024)}
        reply = httpx.post(url, json={"title": "huge"}, headers=huge, timeout=10)
        assert reply.status_code == 431, reply.text
        assert httpx.get(url, timeout=10).json()["tasks"] == before
        assert_mesh_alive(mesh)


def assert_mesh_alive(mesh: LocalMesh) -> None:
    assert not mesh.dead()
    assert httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10).status_code == 200
