"""The local gateway on real Envoy answers as a cluster's ingress gateway does
(issue 14 items 1-3): normalized paths, the Gateway's hosts, merged VirtualServices.

Requests go out with http.client, which sends the path exactly as written (httpx
would remove the dot segments itself, hiding what Envoy does with them).
"""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mesh.runner import LocalMesh
from tests.mesh.conftest import MeshFactory
from tests.mesh.support import overlay
from tests.mesh.test_translate_gateway import gateway, gateway_vs, hello
from tests.mesh.traffic import poll

pytestmark = pytest.mark.integration

SHOP = "shop.example.com"


@pytest.fixture(scope="module", name="mesh")
def _mesh(start_mesh: MeshFactory, tmp_path_factory: pytest.TempPathFactory) -> LocalMesh:
    """k8s/ with its Gateway narrowed to SHOP, plus a second gateway VirtualService
    ("zz-hello", sorted after "frontend") whose /hello must not be shadowed."""
    directory = overlay(
        tmp_path_factory.mktemp("gw") / "o",
        patches=[gateway([SHOP])],
        extra=[gateway_vs("zz-hello", [SHOP], [hello("/hello", "hello")])],
    )
    return start_mesh(Path(directory))


def get(mesh: LocalMesh, path: str, host: str = SHOP) -> tuple[int, bytes]:
    url = urlsplit(mesh.gateway_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def logged(mesh: LocalMesh, marker: str) -> str:
    """The access-log line of the request whose path or query holds MARKER (the log
    shows the path after normalization)."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [ln for ln in mesh.logs("envoy") if marker in ln]
        return bool(found)

    poll(seen, timeout=10, what=f"an access-log line with {marker}")
    return found[-1]


@pytest.mark.parametrize("path", ["/x/../admin/fault", "/./admin/fault", "/%61dmin/fault"])
def test_a_normalized_admin_path_gets_the_gateways_404(mesh: LocalMesh, path: str) -> None:
    marker = f"probe={abs(hash(path))}"
    status, body = get(mesh, f"{path}?{marker}")
    assert (status, body) == (404, b"")  # admin-blocked's direct response, not the frontend's
    line = logged(mesh, marker)
    assert '"GET /admin/fault?' in line and line.endswith(" admin-blocked"), line
    assert get(mesh, "/healthz")[0] == 200  # the frontend is there


def test_a_host_the_gateway_does_not_serve_is_404_nr(mesh: LocalMesh) -> None:
    assert get(mesh, "/nr-probe", host="other.example.com")[0] == 404
    assert " 404 NR " in logged(mesh, "/nr-probe")
    assert get(mesh, "/healthz", host=f"{SHOP}:8080")[0] == 200  # the port is ignored


def test_both_gateway_virtual_services_are_reachable(mesh: LocalMesh) -> None:
    assert get(mesh, "/hello") == (200, b"hello")
    assert get(mesh, "/healthz")[0] == 200
