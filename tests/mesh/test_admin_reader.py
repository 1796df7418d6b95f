"""mesh.admin.get_json: the one reader of Envoy's admin API names the Envoy and the failure
(a real HTTP server on loopback stands in for an admin that misbehaves)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mesh import admin
from mesh.errors import StateError
from tests.support.procs import free_port

ANSWERS = {"/ok": (200, b'{"stats": []}'), "/boom": (503, b"no"), "/html": (200, b"<html>")}


class _Admin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, body = ANSWERS[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_json_comes_back_as_it_is_with_the_params_sent(url: str) -> None:
    assert admin.get_json(f"{url}/ok", params={"format": "json"}) == {"stats": []}


@pytest.mark.parametrize(
    ("path", "says"),
    [("/boom", "answered 503"), ("/html", "not JSON")],
)
def test_a_bad_answer_names_the_url_and_what_was_wrong(url: str, path: str, says: str) -> None:
    with pytest.raises(StateError) as caught:
        admin.get_json(url + path)
    assert str(caught.value).startswith(f"Envoy admin {url}{path}")
    assert says in str(caught.value)


def test_an_admin_that_does_not_listen_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/stats"
    with pytest.raises(StateError, match=r"Envoy admin .*/stats does not answer \(ConnectError\)"):
        admin.get_json(url)
