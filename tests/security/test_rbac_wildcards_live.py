"""Wildcards in an AuthorizationPolicy allow on real Envoy sidecars what a cluster allows
(issue 14 item 5): `mesh up --sidecars` with k8s/'s backend policy written with
wildcards, a method `*` and a path template. Taken literally (as before) the backend's
sidecar answered 403 `RBAC: access denied` to the frontend."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mesh.runner import LocalMesh
from tests.mesh.support import overlay
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

WILD_POLICY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "backend-allow-frontend"},
    "spec": {
        "selector": {"matchLabels": {"app": "backend"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["*/sa/frontend"], "namespaces": ["def*"]}}],
                "to": [{"operation": {"methods": ["*"], "paths": ["/api/{**}"]}}],
            }
        ],
    },
}


@pytest.fixture(scope="module", name="mesh")
def _mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    directory = overlay(tmp_path_factory.mktemp("wild") / "o", patches=[WILD_POLICY])
    mesh = new_mesh(directory, tmp_path_factory.mktemp("wild-state"), sidecars=True)
    with mesh:
        yield mesh


def test_the_frontend_reaches_the_backend_through_wildcards(mesh: LocalMesh) -> None:
    r = httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10.0)
    assert r.status_code == 200, r.text
    assert r.headers["x-backend-version"] == "v1"  # answered by the backend, through RBAC
    canary = httpx.post(f"{mesh.gateway_url}/api/tasks", json={"title": "wild"}, timeout=10.0)
    assert canary.status_code == 201, canary.text  # a method other than GET: `*` allows it
