"""Istio's secure-gateway task on the real Envoy: k8s/variants/secure-gateway terminates
TLS for taskmesh.example.com on the gateway's HTTPS port, picks the certificate by SNI,
and follows a changed Secret or TLS mode live, as istiod pushes them.

Clients here are Python's ssl module over a socket to 127.0.0.1 (what `curl --resolve`
does): the name they check and send as SNI is the server's host, not the address.
"""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mesh.commands.up import banner
from mesh.demos.secure_gateway import (
    https_get,
    refusal,
    served_certificate,
    tls_connect,
)
from mesh.gateway_certs import write_credential
from mesh.processes import free_ports_from
from mesh.runner import LocalMesh
from tests.loop.support import edit_yaml
from tests.mesh.support import K8S
from tests.mesh.test_gateway_live import logged
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

HOST = "taskmesh.example.com"


def secure_tree(where: Path) -> Path:
    """k8s/ with its variants at WHERE/k8s (the variant's files name the base's); returns
    the secure-gateway variant in it, a tree the test may edit."""
    shutil.copytree(K8S, where / "k8s", ignore=shutil.ignore_patterns("jobs"))
    return where / "k8s" / "variants" / "secure-gateway"


def secure_mesh(tree: Path, state: Path, **options: Any) -> LocalMesh:
    """A mesh of TREE whose gateway ports 80 and 443 listen on two free consecutive ports."""
    return new_mesh(tree, state, gateway_port=free_ports_from(2), **options)


@pytest.fixture(scope="module", name="tree")
def _tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return secure_tree(tmp_path_factory.mktemp("secure"))


@pytest.fixture(scope="module", name="mesh")
def _mesh(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with secure_mesh(tree, tmp_path_factory.mktemp("state")) as mesh:
        yield mesh


def https_port(mesh: LocalMesh) -> int:
    return int(mesh.gateway_urls[443].rsplit(":", 1)[1])


def refused_handshake(port: int, **kw: Any) -> bool:
    """Whether the TLS handshake (or the first exchange after it) fails."""
    return bool(refusal(port, **kw))


# --- the variant as it starts ----------------------------------------------------------


def test_the_gateway_answers_https_for_its_host_with_the_credential(
    mesh: LocalMesh, tree: Path
) -> None:
    credential = tree / "credential"
    tls = tls_connect(https_port(mesh), ca=credential / "ca.crt")
    served = served_certificate(tls)
    status, headers, body = https_get(tls, "/api/tasks")
    assert status == 200, body
    assert json.loads(body)["backend"]["version"] == "v1"
    assert served == x509.load_pem_x509_certificate((credential / "tls.crt").read_bytes())
    # canary routing is the same over TLS: the route table of the HTTPS server is the VS's
    tls = tls_connect(https_port(mesh), ca=credential / "ca.crt")
    status, headers, _ = https_get(tls, "/api/tasks", {"x-canary": "true"})
    assert (status, headers["x-backend-version"]) == (200, "v2")


def test_the_gateway_offers_http2_as_istio_does(mesh: LocalMesh, tree: Path) -> None:
    tls = tls_connect(https_port(mesh), ca=tree / "credential" / "ca.crt", alpn=("h2", "http/1.1"))
    try:
        assert tls.selected_alpn_protocol() == "h2"
    finally:
        tls.close()


def test_a_client_without_the_servers_name_gets_no_certificate(mesh: LocalMesh, tree: Path) -> None:
    """No filter chain matches: Envoy closes the connection (as the ingress gateway does;
    `curl https://127.0.0.1:PORT` fails the same way)."""
    ca = tree / "credential" / "ca.crt"
    assert refused_handshake(port=https_port(mesh), sni=None, ca=ca)
    assert refused_handshake(port=https_port(mesh), sni="other.example.com", ca=ca)
    assert not refused_handshake(port=https_port(mesh), sni=HOST, ca=ca)


def test_the_access_log_shows_the_sni_and_the_servers_route(mesh: LocalMesh, tree: Path) -> None:
    tls = tls_connect(https_port(mesh), ca=tree / "credential" / "ca.crt")
    status, _, _ = https_get(tls, "/api/tasks?marker=secure-gateway-log")
    assert status == 200
    line = logged(mesh, "secure-gateway-log")
    assert f" {HOST} " in line  # %REQUESTED_SERVER_NAME%
    assert "outbound|8000||frontend-service" in line


def test_plain_http_is_still_served_on_port_80(mesh: LocalMesh) -> None:
    assert mesh.gateway_url.startswith("http://")
    assert mesh.gateway_urls[443].startswith("https://")
    conn = http.client.HTTPConnection("127.0.0.1", int(mesh.gateway_url.rsplit(":", 1)[1]))
    try:
        conn.request("GET", "/api/tasks")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_the_gateway_drops_a_clients_own_forwarded_client_cert(mesh: LocalMesh) -> None:
    """SANITIZE_SET (gateway.go buildGatewayConnectionManager): a client cannot pose as
    another by sending the header a gateway sets from a verified certificate."""
    conn = http.client.HTTPConnection("127.0.0.1", int(mesh.gateway_url.rsplit(":", 1)[1]))
    try:
        conn.request("GET", "/api/headers", headers={"x-forwarded-client-cert": "By=evil"})
        reply = conn.getresponse()
        seen = json.loads(reply.read())["frontend"]["headers"]
    finally:
        conn.close()
    assert reply.status == 200
    assert "x-forwarded-client-cert" not in seen


def test_the_banner_shows_the_https_port_and_a_curl_that_works(mesh: LocalMesh, tree: Path) -> None:
    text = banner(mesh, 1.0)
    port = https_port(mesh)
    assert f"  gateway   https://127.0.0.1:{port}/   (port 443, TLS for {HOST})" in text
    [curl] = [line for line in text.splitlines() if "--resolve" in line]
    ca = Path(curl.split("--cacert ", 1)[1].split()[0])
    assert ca.resolve() == (tree / "credential" / "ca.crt").resolve()
    assert f"--resolve {HOST}:{port}:127.0.0.1 https://{HOST}:{port}/api/tasks" in curl
    # what that curl does: the CA it names verifies the gateway for that name
    assert https_get(tls_connect(port, ca=ca), "/api/tasks")[0] == 200


def test_a_gateway_port_added_by_a_live_apply_is_served_and_shown(tmp_path: Path) -> None:
    tree = secure_tree(tmp_path)
    with secure_mesh(tree.parent.parent, tmp_path / "state") as mesh:  # k8s/: port 80 only
        assert list(mesh.gateway_urls) == [80]
        outcome = mesh.apply(tree)
        assert outcome["result"] == "applied", outcome
        assert mesh.gateway_urls[443].startswith("https://127.0.0.1:")
        tls = tls_connect(https_port(mesh), ca=tree / "credential" / "ca.crt")
        assert https_get(tls, "/api/tasks")[0] == 200


# --- changes applied live -------------------------------------------------------------


def test_reordered_gateway_servers_keep_their_local_ports(tmp_path: Path) -> None:
    """Ports 80 and 443 listen at the gateway port and the next one, in order of
    appearance at the start; a generation listing 443 first moves neither."""
    tree = secure_tree(tmp_path)
    with secure_mesh(tree, tmp_path / "state") as mesh:
        before = dict(mesh.gateway_urls)
        edit_yaml(tree / "app" / "gateway.yaml", lambda doc: doc["spec"]["servers"].reverse())
        outcome = mesh.apply(tree)
        assert outcome["result"] == "applied", outcome
        assert mesh.gateway_urls == before
        conn = http.client.HTTPConnection("127.0.0.1", int(before[80].rsplit(":", 1)[1]))
        try:
            conn.request("GET", "/api/tasks")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
        tls = tls_connect(https_port(mesh), ca=tree / "credential" / "ca.crt")
        assert https_get(tls, "/api/tasks")[0] == 200


def test_a_new_certificate_and_mutual_tls_are_applied_live(tmp_path: Path) -> None:
    tree = secure_tree(tmp_path)
    credential = tree / "credential"
    with secure_mesh(tree, tmp_path / "state") as mesh:
        port = https_port(mesh)
        before = served_certificate(tls_connect(port, ca=credential / "ca.crt"))

        # rotate: new files for the Secret's generator (a new CA too), then apply
        write_credential(credential)
        outcome = mesh.apply(tree)
        assert outcome["result"] == "applied", outcome
        tls = tls_connect(port, ca=credential / "ca.crt")  # the old CA would not verify it
        after = served_certificate(tls)
        assert after != before
        assert after == x509.load_pem_x509_certificate((credential / "tls.crt").read_bytes())
        assert https_get(tls, "/api/tasks")[0] == 200

        # MUTUAL: a client must present a certificate the Secret's ca.crt signed
        def mutual(doc: dict[str, Any]) -> None:
            doc["spec"]["servers"][1]["tls"]["mode"] = "MUTUAL"

        edit_yaml(tree / "app" / "gateway.yaml", mutual)
        assert mesh.apply(tree)["result"] == "applied"
        assert refused_handshake(port=port, ca=credential / "ca.crt")
        tls = tls_connect(port, ca=credential / "ca.crt", client=credential)
        status, _, body = https_get(tls, "/api/headers")
        assert status == 200, body
        # the gateway tells the app who the client is, from the verified certificate
        xfcc = json.loads(body)["frontend"]["headers"]["x-forwarded-client-cert"]
        assert "DNS=client.example.com" in xfcc and "CN=client.example.com" in xfcc


def test_https_redirect_sends_plain_http_to_https(tmp_path: Path) -> None:
    tree = secure_tree(tmp_path)

    def redirect(doc: dict[str, Any]) -> None:
        doc["spec"]["servers"][0]["tls"] = {"httpsRedirect": True}

    edit_yaml(tree / "app" / "gateway.yaml", redirect)
    with secure_mesh(tree, tmp_path / "state") as mesh:
        conn = http.client.HTTPConnection("127.0.0.1", int(mesh.gateway_url.rsplit(":", 1)[1]))
        try:
            conn.request("GET", "/api/tasks?x=1", headers={"Host": HOST})
            reply = conn.getresponse()
            assert reply.status == 301
            assert reply.getheader("location") == f"https://{HOST}/api/tasks?x=1"
        finally:
            conn.close()


def test_with_sidecars_the_gateway_terminates_tls_and_a_new_certificate_is_live(
    tmp_path: Path,
) -> None:
    """The gateway speaks mTLS to the frontend's sidecar behind the TLS it terminates; a
    changed Secret is pushed live as a route is (it changes no workload)."""
    tree = secure_tree(tmp_path)
    credential = tree / "credential"
    with secure_mesh(tree, tmp_path / "state", sidecars=True) as mesh:
        port = https_port(mesh)
        tls = tls_connect(port, ca=credential / "ca.crt")
        status, _, body = https_get(tls, "/api/headers")
        assert status == 200, body
        xfcc = json.loads(body)["frontend"]["headers"]["x-forwarded-client-cert"]
        assert "istio-ingressgateway-service-account" in xfcc  # the gateway's identity
        write_credential(credential)
        outcome = mesh.apply(tree)
        assert outcome["result"] == "applied", outcome
        after = served_certificate(tls_connect(port, ca=credential / "ca.crt"))
        assert after == x509.load_pem_x509_certificate((credential / "tls.crt").read_bytes())
