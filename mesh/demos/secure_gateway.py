"""`mesh demo secure-gateway` (`make demo-secure-gateway`): Istio's "Secure Gateways" task
on a throwaway mesh of `k8s/variants/secure-gateway` (a copy: your files never change).

1. HTTPS for taskmesh.example.com, trusting the demo CA: 200, the certificate the
   gateway served (Secret taskmesh-credential of istio-system), HTTP/2 offered by ALPN;
2. the same port without SNI, and for another name: no filter chain, no certificate;
3. ``mode: MUTUAL`` applied live: without a client certificate refused, with the
   demo's client.crt 200, and the ``x-forwarded-client-cert`` the frontend received;
4. new certificates (as `make gateway-certs` makes them) applied live: the new one is
   served, no restart.

Clients are Python's ssl over a socket to 127.0.0.1, as ``curl --resolve`` does: the
name they send and check is the server's host, not the address.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from mesh.gateway_certs import write_credential

Out = Callable[[str], None]
HOST = "taskmesh.example.com"
VARIANT = Path("variants") / "secure-gateway"
TIMEOUT_S = 10.0


def tls_connect(
    port: int,
    sni: str | None = HOST,
    ca: Path | None = None,
    client: Path | None = None,
    alpn: tuple[str, ...] = ("http/1.1",),
) -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:PORT sending SNI (none when None), trusting CA, and
    presenting CLIENT/client.crt and client.key when CLIENT is given."""
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if sni is None:
        context.check_hostname = False
    if client is not None:
        context.load_cert_chain(client / "client.crt", client / "client.key")
    context.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    try:
        return context.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def https_get(
    tls: ssl.SSLSocket, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET PATH over TLS (HTTP/1.1) for HOST; (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection(HOST)
    conn.sock = tls  # already connected: http.client speaks over it
    try:
        conn.request("GET", path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def served_certificate(tls: ssl.SSLSocket) -> x509.Certificate:
    der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the gateway presented no certificate")
    return x509.load_der_x509_certificate(der)


def refusal(port: int, path: str = "/api/tasks", **kw: Any) -> str:
    """Why a request fails (the error, in one line), or "" when it is answered 2xx/3xx."""
    try:
        tls = tls_connect(port, **kw)
        status, _, _ = https_get(tls, path)
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return "" if status < 400 else f"HTTP {status}"


@dataclass
class SecureGatewayDemo:
    """The evidence, step by step (each a list of lines)."""

    steps: dict[str, list[str]] = field(default_factory=dict)
    ok: dict[str, bool] = field(default_factory=dict)  # what the tests check, by name

    def render(self) -> str:
        out = []
        for title, lines in self.steps.items():
            out += ["", f"== {title} ==", *lines]
        return "\n".join(out).lstrip()


def _describe(cert: x509.Certificate) -> str:
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    return f"{subject}, issued by {issuer}, serial {cert.serial_number:x}"


def _step_https(demo: SecureGatewayDemo, port: int, credential: Path) -> x509.Certificate:
    lines = demo.steps.setdefault("HTTPS for taskmesh.example.com (the demo CA trusted)", [])
    tls = tls_connect(port, ca=credential / "ca.crt")
    cert = served_certificate(tls)
    status, headers, body = https_get(tls, "/api/tasks")
    version = json.loads(body)["backend"]["version"] if status == 200 else "-"
    lines.append(f"  GET /api/tasks: {status}, answered by {version}")
    lines.append(f"  certificate: {_describe(cert)}")
    tls = tls_connect(port, ca=credential / "ca.crt")
    canary, canary_headers, _ = https_get(tls, "/api/tasks", {"x-canary": "true"})
    lines.append(f"  with x-canary: true: {canary}, {canary_headers.get('x-backend-version')}")
    h2 = tls_connect(port, ca=credential / "ca.crt", alpn=("h2", "http/1.1"))
    alpn = h2.selected_alpn_protocol()
    h2.close()
    lines.append(f"  ALPN offered h2, http/1.1: the gateway chose {alpn}")
    demo.ok["https"] = status == 200 and canary_headers.get("x-backend-version") == "v2"
    demo.ok["h2"] = alpn == "h2"
    return cert


def _step_sni(demo: SecureGatewayDemo, port: int, credential: Path) -> None:
    lines = demo.steps.setdefault("The certificate is chosen by SNI", [])
    none = refusal(port, sni=None, ca=credential / "ca.crt")
    other = refusal(port, sni="other.example.com", ca=credential / "ca.crt")
    lines.append(f"  no SNI (curl https://127.0.0.1:{port}/): {none or 'answered'}")
    lines.append(f"  SNI other.example.com: {other or 'answered'}")
    demo.ok["sni"] = bool(none) and bool(other)


def _edit_mode(tree: Path, mode: str) -> None:
    path = tree / "app" / "gateway.yaml"
    doc = yaml.safe_load(path.read_text())
    for server in doc["spec"]["servers"]:
        if "tls" in server and "credentialName" in server["tls"]:
            server["tls"]["mode"] = mode
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _step_mutual(demo: SecureGatewayDemo, mesh: Any, port: int, tree: Path) -> None:
    credential = tree / "credential"
    lines = demo.steps.setdefault("mode: MUTUAL, applied live", [])
    _edit_mode(tree, "MUTUAL")
    outcome = mesh.apply(tree)
    lines.append(f"  apply: {outcome['result']} (generation {outcome.get('generation')})")
    without = refusal(port, ca=credential / "ca.crt")
    lines.append(f"  without a client certificate: {without or 'answered'}")
    tls = tls_connect(port, ca=credential / "ca.crt", client=credential)
    status, _, body = https_get(tls, "/api/headers")
    xfcc = json.loads(body)["frontend"]["headers"].get("x-forwarded-client-cert", "")
    lines.append(f"  with client.crt: {status}")
    subject = next((p for p in xfcc.split(";") if p.startswith("Subject=")), "(none)")
    lines.append(f"  the frontend got x-forwarded-client-cert {subject}")
    demo.ok["mutual"] = bool(without) and status == 200 and "client.example.com" in xfcc


def _step_rotate(
    demo: SecureGatewayDemo, mesh: Any, port: int, tree: Path, before: x509.Certificate
) -> None:
    credential = tree / "credential"
    lines = demo.steps.setdefault("New certificates, applied live", [])
    _edit_mode(tree, "SIMPLE")
    write_credential(credential)  # a new CA and pair, as `make gateway-certs`
    outcome = mesh.apply(tree)
    lines.append(f"  apply: {outcome['result']} (generation {outcome.get('generation')})")
    tls = tls_connect(port, ca=credential / "ca.crt")
    after = served_certificate(tls)
    status, _, _ = https_get(tls, "/api/tasks")
    lines.append(f"  before: serial {before.serial_number:x}")
    lines.append(f"  now:    serial {after.serial_number:x} (verified with the new CA), {status}")
    demo.ok["rotated"] = after != before and status == 200


def secure_gateway_demo(k8s: Path, out: Out) -> SecureGatewayDemo:
    from mesh.commands.demo import local_mesh

    work = Path(tempfile.mkdtemp(prefix="taskmesh-secure-"))
    try:
        shutil.copytree(k8s, work / "k8s", ignore=shutil.ignore_patterns("jobs"))
        tree = work / "k8s" / VARIANT
        demo = SecureGatewayDemo()
        with local_mesh(tree, out) as mesh:
            port = int(mesh.gateway_urls[443].rsplit(":", 1)[1])
            out(f"  HTTPS gateway https://127.0.0.1:{port} (port 443) for {HOST}")
            before = _step_https(demo, port, tree / "credential")
            _step_sni(demo, port, tree / "credential")
            _step_mutual(demo, mesh, port, tree)
            _step_rotate(demo, mesh, port, tree, before)
            out("\n" + demo.render())
        return demo
    finally:
        shutil.rmtree(work, ignore_errors=True)
