"""`mesh up --sidecars` follows a changed Deployment live: a new replica starts with its
own sidecar (ports, certificate, config), a stopped one takes its sidecar along, and a
rolling update surges on new names, as a ReplicaSet's pods (mesh/loop/sidecar_pods.py).

One mesh of a copy of k8s/ with a sidecar per instance, on real Envoy; each test edits
the copy, applies it (`LocalMesh.apply`, what a save or `mesh apply` does) and puts the
files back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mesh.load.background import BackgroundLoad
from mesh.runner import LocalMesh
from mesh.sidecars import Sidecar
from tests.loop.support import (
    copy_k8s,
    edit_yaml,
    extra_deployment,
    live_pods,
    set_env,
    set_replicas,
)
from tests.mesh.traffic import poll
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_k8s(tmp_path_factory.mktemp("sidecars-workloads"))


@pytest.fixture(scope="module", name="mesh")
def _mesh(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with new_mesh(tree, tmp_path_factory.mktemp("state"), sidecars=True) as mesh:
        yield mesh


@pytest.fixture
def restore(tree: Path, mesh: LocalMesh) -> Iterator[None]:
    """Put every Deployment file back after the test, and apply them."""
    files = {p: p.read_text() for p in (tree / "deployments").glob("*.yaml")}
    yield
    for path, text in files.items():
        path.write_text(text)
    assert mesh.apply()["result"] in ("applied", "unchanged")


def _sidecar(mesh: LocalMesh, instance: str) -> Sidecar | None:
    assert mesh.sidecar_setup is not None
    return next((s for s in mesh.sidecar_setup.sidecars if s.instance == instance), None)


def _running(mesh: LocalMesh) -> set[str]:
    """Names of the sidecar Envoys the kubelet runs now."""
    with mesh.kubelet.cond:
        return {p.name for p in mesh.kubelet.system if p.name.endswith(".sidecar")}


def _served_by(mesh: LocalMesh, n: int) -> set[str]:
    """Backend instances that answered N GETs through the gateway, the frontend and the
    sidecars (the host may not call the backend itself: its RBAC allows the frontend)."""
    seen = set()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(n):
            r = client.get(f"{mesh.gateway_url}/api/tasks")
            assert r.status_code == 200, r.text
            seen.add(r.headers["x-backend-instance"])
    return seen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _plain(sidecar: Sidecar) -> int | None:
    """Status of a plain-text GET to SIDECAR's inbound port (None: no HTTP answer)."""
    try:
        return httpx.get(f"http://127.0.0.1:{sidecar.inbound_port}/", timeout=5.0).status_code
    except httpx.TransportError:
        return None


def _applied_under_load(mesh: LocalMesh) -> dict:
    """Apply the edited tree while requests flow through the gateway: applied, and every
    request answered 200."""
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=2, qps=40) as load:
        outcome = mesh.apply()
    assert outcome["result"] == "applied" and not outcome["problems"], outcome
    result = load.result
    assert result is not None and result.total > 0
    assert set(result.status_counts) == {200} and not result.errors, (
        result.status_counts,
        result.errors,
    )
    return outcome


def test_scaling_up_starts_a_replica_with_its_own_sidecar_and_down_stops_both(
    mesh: LocalMesh, tree: Path, restore: None
) -> None:
    before = _sidecar(mesh, "backend-v1-0")
    set_replicas(tree, "backend-v1", 3)
    with BackgroundLoad(f"{mesh.gateway_url}/api/tasks", connections=2, qps=40) as load:
        up = mesh.apply()
    assert up["result"] == "applied" and not up["problems"], up
    assert load.result is not None and set(load.result.status_counts) == {200}
    assert live_pods(mesh, "backend-v1") == ["backend-v1-0", "backend-v1-1", "backend-v1-2"]
    new = _sidecar(mesh, "backend-v1-2")
    assert new is not None and "backend-v1-2.sidecar" in _running(mesh)
    assert new.identity == "cluster.local/ns/default/sa/backend"
    pod = mesh.pod("backend-v1-2")
    assert (pod.port, pod.endpoint_port) == (new.app_port, new.inbound_port)
    kept = _sidecar(mesh, "backend-v1-0")  # the others keep theirs
    assert before is not None and kept is not None
    assert (kept.inbound_port, kept.admin_port) == (before.inbound_port, before.admin_port)
    assert _plain(new) is None  # STRICT mTLS from its first request
    poll(lambda: "backend-v1-2" in _served_by(mesh, 10), DEADLINE_S, "backend-v1-2 answering")

    sidecar_pid = next(p.pid for p in mesh.kubelet.system if p.name == "backend-v1-2.sidecar")
    assert sidecar_pid is not None
    set_replicas(tree, "backend-v1", 1)
    down = mesh.apply()
    assert down["result"] == "applied" and not down["problems"], down
    assert live_pods(mesh, "backend-v1") == ["backend-v1-0"]
    assert _sidecar(mesh, "backend-v1-1") is None and _sidecar(mesh, "backend-v1-2") is None
    assert {"backend-v1-1.sidecar", "backend-v1-2.sidecar"} & _running(mesh) == set()
    poll(lambda: not _alive(sidecar_pid), DEADLINE_S, "the stopped replica's sidecar exiting")
    assert _served_by(mesh, 10) == {"backend-v1-0"}


def test_a_rolling_update_surges_on_new_names_with_new_sidecars_and_fails_no_request(
    mesh: LocalMesh, tree: Path, restore: None
) -> None:
    old = _sidecar(mesh, "frontend-0")
    assert old is not None
    set_env(tree, "frontend", "LOG_LEVEL", "warning")
    _applied_under_load(mesh)
    assert live_pods(mesh, "frontend") == ["frontend-1"]  # surged beside frontend-0
    assert mesh.pod("frontend-1").env["LOG_LEVEL"] == "warning"
    assert _sidecar(mesh, "frontend-0") is None and "frontend-0.sidecar" not in _running(mesh)
    new = _sidecar(mesh, "frontend-1")
    assert new is not None and new.admin_port != old.admin_port
    # the new replica calls the backend through its own new sidecar, under the same RBAC
    assert _served_by(mesh, 5) <= {"backend-v1-0", "backend-v1-1"}


V1 = "outbound|5000|v1|backend-service.default.svc.cluster.local"
OLD = "cluster.local/ns/default/sa/backend"
NEXT = "cluster.local/ns/default/sa/backend-next"


def _caller(mesh: LocalMesh) -> Sidecar:
    """The frontend replica's sidecar, the backend's caller."""
    assert mesh.sidecar_setup is not None
    return next(s for s in mesh.sidecar_setup.sidecars if s.deployment.name == "frontend")


def _trusted(sidecar: Sidecar, cluster: str) -> list[str]:
    """The SPIFFE ids SIDECAR's running Envoy accepts from CLUSTER's endpoints."""
    dump = httpx.get(
        f"{sidecar.admin_url}/config_dump?resource=dynamic_active_clusters", timeout=10.0
    ).json()
    for entry in dump["configs"]:
        if entry["cluster"]["name"] != cluster:
            continue
        socket = entry["cluster"].get("transport_socket") or next(
            m["transport_socket"]
            for m in entry["cluster"]["transport_socket_matches"]
            if m["name"] == "istio-mtls"
        )
        context = socket["typed_config"]["common_tls_context"]
        sans = context["validation_context"]["match_typed_subject_alt_names"]
        return sorted(m["matcher"]["exact"] for m in sans)
    raise AssertionError(f"{sidecar.name} has no cluster {cluster}")


def _account(name: str):  # type: ignore[no-untyped-def]
    def change(doc: dict) -> None:
        doc["spec"]["template"]["spec"]["serviceAccountName"] = name

    return change


def test_a_new_service_account_rolls_under_load_and_the_old_identity_is_dropped(
    mesh: LocalMesh, tree: Path, restore: None
) -> None:
    """backend-v1's serviceAccountName changes: its replicas roll to new ones issued the
    new identity, no request fails while they roll (the callers trust both), and once
    rolled the callers trust the new identity alone (a push without the old one)."""
    assert _trusted(_caller(mesh), V1) == [f"spiffe://{OLD}"]
    edit_yaml(tree / "deployments" / "backend-v1.yaml", _account("backend-next"))
    outcome = _applied_under_load(mesh)
    assert mesh.generation is not None and mesh.generation.number == outcome["generation"] + 1
    pods = live_pods(mesh, "backend-v1")
    assert pods and not {"backend-v1-0", "backend-v1-1"} & set(pods), pods
    for name in pods:
        sidecar = _sidecar(mesh, name)
        assert sidecar is not None
        assert sidecar.identity == NEXT
    assert _trusted(_caller(mesh), V1) == [f"spiffe://{NEXT}"]
    assert _served_by(mesh, 10) <= set(pods)


def test_a_caller_with_a_new_service_account_is_denied_by_the_backends_policy(
    mesh: LocalMesh, tree: Path, restore: None
) -> None:
    """The frontend rolls to account `intruder`: its new sidecar presents that identity,
    which the backend's AuthorizationPolicy (principals: sa/frontend) does not allow."""
    edit_yaml(tree / "deployments" / "frontend.yaml", _account("intruder"))
    outcome = mesh.apply()
    assert outcome["result"] == "applied" and not outcome["problems"], outcome
    (name,) = live_pods(mesh, "frontend")
    sidecar = _sidecar(mesh, name)
    assert sidecar is not None and sidecar.identity == "cluster.local/ns/default/sa/intruder"
    r = httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10.0)
    assert r.status_code == 403 and "RBAC: access denied" in r.text, (r.status_code, r.text)


def test_a_new_deployment_with_its_own_account_is_called_over_mtls_and_removed_with_it(
    mesh: LocalMesh, tree: Path, restore: None
) -> None:
    """backend-v1-next (label version v1, service account backend-next): the running
    sidecars verify its identity before its own sidecar exists (the stand-in's SANs),
    then call it; removing it stops the replica and its sidecar."""

    def next_account(doc: dict) -> None:
        doc["spec"]["replicas"] = 1
        doc["spec"]["template"]["spec"]["serviceAccountName"] = "backend-next"

    with extra_deployment(tree, "backend-v1-next", next_account):
        outcome = mesh.apply()
        assert outcome["result"] == "applied" and not outcome["problems"], outcome
        new = _sidecar(mesh, "backend-v1-next-0")
        assert new is not None
        assert new.identity == NEXT
        poll(
            lambda: "backend-v1-next-0" in _served_by(mesh, 10),
            DEADLINE_S,
            "the frontend's sidecar calling backend-v1-next-0 over mTLS",
        )
        assert _trusted(_caller(mesh), V1) == [f"spiffe://{OLD}", f"spiffe://{NEXT}"]
    outcome = mesh.apply()
    assert outcome["result"] == "applied", outcome
    assert outcome["changes"] == ["Deployment/backend-v1-next removed"]
    # its replica is no endpoint of the generation: untrusted at once, no second push
    assert mesh.generation is not None and mesh.generation.number == outcome["generation"]
    assert _sidecar(mesh, "backend-v1-next-0") is None
    assert "backend-v1-next-0.sidecar" not in _running(mesh)
    assert _served_by(mesh, 10) <= {"backend-v1-0", "backend-v1-1"}
    # nothing holds backend-next now: the callers stop trusting it (a push without it)
    assert _trusted(_caller(mesh), V1) == [f"spiffe://{OLD}"]
