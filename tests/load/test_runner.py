from __future__ import annotations

import httpx
import pytest

from mesh.load.runner import backend_of, classify_error

REQ = httpx.Request("GET", "http://127.0.0.1:1/")


def _refused() -> httpx.ConnectError:
    exc = httpx.ConnectError("All connection attempts failed", request=REQ)
    exc.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_refused(), "connection_refused"),
        (httpx.ConnectError("[Errno -2] Name or service not known", request=REQ), "connect_error"),
        (httpx.ConnectTimeout("t", request=REQ), "connect_timeout"),
        (httpx.ReadTimeout("t", request=REQ), "read_timeout"),
        (httpx.PoolTimeout("t", request=REQ), "pool_timeout"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                   request=REQ), "server_disconnected"),
        (httpx.RemoteProtocolError("illegal header", request=REQ), "protocol_error"),
        (httpx.ReadError("reset", request=REQ), "read_error"),
    ],
)  # fmt: skip
def test_error_kinds(exc: Exception, kind: str) -> None:
    assert classify_error(exc) == kind


def test_backend_from_headers_first() -> None:
    r = httpx.Response(
        200,
        headers={"x-backend-version": "v1", "x-backend-instance": "backend-v1-1"},
        json={"backend": {"version": "v2", "instance": "backend-v2-0"}},
    )
    assert backend_of(r) == ("v1", "backend-v1-1")


def test_backend_from_frontend_json_body() -> None:
    r = httpx.Response(200, json={"backend": {"version": "v2", "instance": "backend-v2-0"}})
    assert backend_of(r) == ("v2", "backend-v2-0")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"version": "v1", "instance": "frontend-0"}),  # not a backend's
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"backend": {"version": 2}}),
        httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
        httpx.Response(503, text="upstream connect error"),
    ],
)
def test_no_backend_seen(response: httpx.Response) -> None:
    assert backend_of(response) == (None, None)
