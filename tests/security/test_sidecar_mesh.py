"""k8s/ with a sidecar per instance, through real Envoy: STRICT mTLS, RBAC, the gateway.

Clients in these tests talk to a sidecar's inbound port directly, as another pod would,
with certificates from the mesh's own CA (or none)."""

from __future__ import annotations

import collections
import re
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from mesh.ca import CertPair, workload_identity
from mesh.runner import LocalMesh
from mesh.sidecars import GATEWAY_IDENTITY, Sidecar, SidecarSetup
from tests.mesh.traffic import versions

pytestmark = pytest.mark.integration

FRONTEND_ID = workload_identity("default", "frontend")
BACKEND_ID = workload_identity("default", "backend")
DENIED = "RBAC: access denied"


@pytest.fixture(scope="module", name="mesh")
def _mesh(sidecar_mesh: LocalMesh) -> LocalMesh:
    return sidecar_mesh  # the sidecar mesh of tests/conftest.py


def _setup(mesh: LocalMesh) -> SidecarSetup:
    assert mesh.sidecar_setup is not None
    return mesh.sidecar_setup


def _sidecar(mesh: LocalMesh, instance: str) -> Sidecar:
    return next(s for s in _setup(mesh).sidecars if s.instance == instance)


def _backend_sidecars(mesh: LocalMesh) -> list[Sidecar]:
    found = [s for s in _setup(mesh).sidecars if s.deployment.name.startswith("backend-")]
    assert len(found) == 3
    return found


def _context(mesh: LocalMesh, certs: CertPair | None) -> ssl.SSLContext:
    """A client TLS context trusting the mesh's root; the server is checked by its SPIFFE
    SAN (there is no DNS name to check), so hostname checking is off."""
    ctx = ssl.create_default_context(cafile=str(_setup(mesh).ca.root_cert_path))
    ctx.check_hostname = False
    if certs is not None:
        ctx.load_cert_chain(certs.cert, certs.key)
    return ctx


def _client_certs(mesh: LocalMesh, identity: str, name: str) -> CertPair:
    return _setup(mesh).ca.issue(identity, f"test-{name}")


def _get(mesh: LocalMesh, sidecar: Sidecar, path: str, certs: CertPair) -> httpx.Response:
    url = f"https://127.0.0.1:{sidecar.inbound_port}{path}"
    with httpx.Client(verify=_context(mesh, certs), timeout=10.0) as client:
        return client.get(url)


# --------------------------------------------------------------------------- mTLS


def test_plain_text_to_a_backend_sidecar_is_refused(mesh: LocalMesh) -> None:
    frontend = _client_certs(mesh, FRONTEND_ID, "frontend")
    for sidecar in _backend_sidecars(mesh):
        assert sidecar.mode == "STRICT"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{sidecar.inbound_port}/api/tasks", timeout=5.0)
        # the same port answers mutual TLS: it is the sidecar refusing, not a dead port
        assert _get(mesh, sidecar, "/api/tasks", frontend).status_code == 200


def test_tls_without_a_client_certificate_is_refused(mesh: LocalMesh) -> None:
    sidecar = _backend_sidecars(mesh)[0]
    url = f"https://127.0.0.1:{sidecar.inbound_port}/api/tasks"
    with pytest.raises(httpx.TransportError):
        with httpx.Client(verify=_context(mesh, None), timeout=5.0) as client:
            client.get(url)


def test_a_sidecar_presents_its_workloads_spiffe_identity(mesh: LocalMesh) -> None:
    ctx = _context(mesh, _client_certs(mesh, FRONTEND_ID, "frontend"))
    for instance, identity in (("backend-v2-0", BACKEND_ID), ("frontend-0", FRONTEND_ID)):
        port = _sidecar(mesh, instance).inbound_port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                cert = tls.getpeercert()
        assert cert is not None
        assert cert["subjectAltName"] == (("URI", f"spiffe://{identity}"),)


# --------------------------------------------------------------------------- RBAC


def test_another_service_account_is_denied_by_the_backend(mesh: LocalMesh) -> None:
    intruder = _client_certs(mesh, workload_identity("default", "intruder"), "intruder")
    for sidecar in _backend_sidecars(mesh):
        r = _get(mesh, sidecar, "/api/tasks", intruder)
        assert r.status_code == 403
        assert r.text == DENIED
        assert "x-backend-version" not in r.headers


def test_the_frontend_identity_is_allowed_on_the_api_only(mesh: LocalMesh) -> None:
    frontend = _client_certs(mesh, FRONTEND_ID, "frontend")
    sidecar = _sidecar(mesh, "backend-v1-1")
    r = _get(mesh, sidecar, "/api/tasks", frontend)
    assert r.status_code == 200
    assert r.json()["instance"] == "backend-v1-1"
    denied = _get(mesh, sidecar, "/admin/fault", frontend)
    assert (denied.status_code, denied.text) == (403, DENIED)
    # path normalization: a dot-segment does not smuggle /admin past the /api/* rule
    # (sent raw: HTTP clients remove dot-segments themselves)
    assert _raw_status(mesh, sidecar, "/api/../admin/fault", frontend) == 403
    assert _raw_status(mesh, sidecar, "/api/./tasks", frontend) == 200


def _raw_status(mesh: LocalMesh, sidecar: Sidecar, path: str, certs: CertPair) -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sidecar.inbound_port), timeout=5) as raw:
        with _context(mesh, certs).wrap_socket(raw) as tls:
            tls.sendall(request.encode())
            status_line = tls.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_the_gateway_identity_cannot_call_the_backend(mesh: LocalMesh) -> None:
    gateway = _client_certs(mesh, GATEWAY_IDENTITY, "gateway")
    r = _get(mesh, _backend_sidecars(mesh)[0], "/api/tasks", gateway)
    assert (r.status_code, r.text) == (403, DENIED)
    # the shared Envoy's backend-service listener calls with the gateway's identity too
    r = httpx.get(f"{mesh.service_url('backend-service')}/api/tasks", timeout=10.0)
    assert (r.status_code, r.text) == (403, DENIED)


def test_the_frontend_sidecar_answers_the_gateway_but_never_on_admin(mesh: LocalMesh) -> None:
    sidecar = _sidecar(mesh, "frontend-0")
    gateway = _client_certs(mesh, GATEWAY_IDENTITY, "gateway")
    assert _get(mesh, sidecar, "/healthz", gateway).status_code == 200
    r = _get(mesh, sidecar, "/admin/fault", gateway)
    assert (r.status_code, r.text) == (403, DENIED)
    backend = _client_certs(mesh, BACKEND_ID, "backend")
    r = _get(mesh, sidecar, "/healthz", backend)
    assert (r.status_code, r.text) == (403, DENIED)


# --------------------------------------------------------------------------- end to end


def test_the_frontend_calls_the_backend_through_its_own_sidecar(mesh: LocalMesh) -> None:
    sidecar = _sidecar(mesh, "frontend-0")
    frontend = next(w for w in mesh.workloads if w.name == "frontend-0")
    port = sidecar.outbound_port("backend-service", 5000)
    assert frontend.env["BACKEND_URL"] == f"http://127.0.0.1:{port}"


def test_gateway_to_frontend_to_backend_with_canary_routing(mesh: LocalMesh) -> None:
    url = f"{mesh.gateway_url}/api/tasks"
    assert versions(url, 20) == {"v1": 20}
    assert versions(url, 20, {"x-canary": "true"}) == {"v2": 20}


def test_the_backend_sees_the_frontends_identity(mesh: LocalMesh) -> None:
    r = httpx.get(f"{mesh.gateway_url}/api/headers", timeout=10.0)
    assert r.status_code == 200, r.text
    xfcc = r.json()["backend"]["headers"]["x-forwarded-client-cert"]
    assert f"URI=spiffe://{FRONTEND_ID}" in xfcc
    assert f"By=spiffe://{BACKEND_ID}" in xfcc


def test_the_fault_toggle_is_unreachable_through_the_gateway(mesh: LocalMesh) -> None:
    before = [httpx.get(f"{mesh.instance_url(s.instance)}/admin/fault").json() for s in
              _backend_sidecars(mesh)]  # fmt: skip
    body = {"status": 503, "error_rate": 1.0}
    for method in ("GET", "PUT", "DELETE"):
        r = httpx.request(method, f"{mesh.gateway_url}/admin/fault", json=body, timeout=10.0)
        assert r.status_code == 404, (method, r.text)
    after = [httpx.get(f"{mesh.instance_url(s.instance)}/admin/fault").json() for s in
             _backend_sidecars(mesh)]  # fmt: skip
    assert after == before
    assert not any(view["active"] for view in after)
    assert versions(f"{mesh.gateway_url}/api/tasks", 10) == {"v1": 10}


def test_private_keys_stay_private(mesh: LocalMesh) -> None:
    keys = sorted(Path(_setup(mesh).ca.directory).glob("*-key.pem"))
    assert len(keys) >= 5  # root, gateway and one per instance
    assert {k.stat().st_mode & 0o777 for k in keys} == {0o600}


def test_a_rolling_restart_behind_sidecars_fails_no_request(mesh: LocalMesh) -> None:
    """Last in this module: as `kubectl rollout restart`, new replicas surge on new names,
    each behind a new sidecar, and the old ones drain out of every sidecar's endpoints
    before SIGTERM, taking their sidecars along."""
    url = f"{mesh.gateway_url}/api/tasks"
    statuses: collections.Counter[int] = collections.Counter()
    done = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10.0) as client:
            while not done.is_set():
                statuses[client.get(url).status_code] += 1

    worker = threading.Thread(target=load, name="load")
    worker.start()
    try:
        restarted = mesh.restart("backend-v1", say=lambda line: None)
    finally:
        done.set()
        worker.join(timeout=30)
    assert restarted == ["backend-v1-0", "backend-v1-1"]
    assert set(statuses) == {200}, statuses
    assert statuses[200] > 0
    # new replicas on new names, each behind a sidecar of its own; the old ones' are gone
    now = sorted(p.name for p in mesh.kubelet.pods_of("backend-v1") if not p.terminating)
    assert len(now) == 2 and not set(now) & set(restarted), now
    with mesh.kubelet.cond:
        running = {p.name for p in mesh.kubelet.system}
    assert {f"{n}.sidecar" for n in now} <= running
    assert not {f"{n}.sidecar" for n in restarted} & running


def test_status_lists_each_sidecar_with_its_admin(
    mesh: LocalMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    from mesh.cli import main as mesh_main

    assert mesh_main(["status", "--state-dir", str(mesh.state_dir)]) == 0
    out = capsys.readouterr().out
    pids = {p.name: p.pid for p in mesh.kubelet.system}
    for s in _setup(mesh).sidecars:
        row = rf"^{re.escape(s.name)}\s+{pids[s.name]}\s+ready\s+0\s+\({re.escape(s.admin_url)}\)$"
        assert re.search(row, out, re.M), (s.name, out)
    assert re.search(rf"^envoy\s+{pids['envoy']}\s+ready\s", out, re.M), out
