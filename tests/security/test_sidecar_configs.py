"""The generated sidecar configs: Istio's names, where traffic goes, what TLS each side asks."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import envoy
from mesh.loop.startup import stop_leftovers as _stop_leftovers
from mesh.manifests import Manifests, load
from mesh.sidecars import (
    SidecarSetup,
    leftover_pids,
    prepare,
    record_pids,
    secure_gateway,
    validate_all,
)
from mesh.sidecars.bootstrap import INBOUND_LISTENER, istio_sni
from mesh.translate import local_placement, translate
from tests.mesh.support import K8S, overlay
from tests.support.procs import free_port

BACKEND = "backend-service.default.svc.cluster.local"


def _prepare(manifests: Manifests, state: Path) -> SidecarSetup:
    ports = itertools.count(31000)
    apps = {i: next(ports) for d in manifests.deployments for i in d.instance_names()}
    return prepare(manifests, apps, state, lambda: next(ports))


def _config(setup: SidecarSetup, instance: str) -> dict[str, Any]:
    sidecar = next(s for s in setup.sidecars if s.instance == instance)
    return yaml.safe_load(setup.configs[sidecar.name].read_text())


def _by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["name"] == name)


def _tls(cluster: dict[str, Any]) -> dict[str, Any]:
    if "transport_socket" in cluster:
        return cluster["transport_socket"]["typed_config"]
    match = _by_name(cluster["transport_socket_matches"], "istio-mtls")
    return match["transport_socket"]["typed_config"]


@pytest.fixture(scope="module", name="k8s")
def _k8s(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifests, SidecarSetup]:
    manifests = load(K8S)
    return manifests, _prepare(manifests, tmp_path_factory.mktemp("state"))


def test_sni_follows_istio(k8s: tuple[Manifests, SidecarSetup]) -> None:
    assert istio_sni(f"outbound|5000|v1|{BACKEND}") == f"outbound_.5000_.v1_.{BACKEND}"
    assert istio_sni(f"outbound|5000||{BACKEND}") == f"outbound_.5000_._.{BACKEND}"


def test_outbound_clusters_reach_backend_sidecars_over_mtls(
    k8s: tuple[Manifests, SidecarSetup],
) -> None:
    _, setup = k8s
    clusters = _config(setup, "frontend-0")["static_resources"]["clusters"]
    v2 = _by_name(clusters, f"outbound|5000|v2|{BACKEND}")
    tls = _tls(v2)
    assert tls["sni"] == f"outbound_.5000_.v2_.{BACKEND}"
    context = tls["common_tls_context"]
    assert context["alpn_protocols"] == ["istio-peer-exchange", "istio"]
    assert context["tls_certificates"][0]["certificate_chain"]["filename"].endswith(
        "frontend-0-cert.pem"
    )
    sans = context["validation_context"]["match_typed_subject_alt_names"]
    assert sans == [
        {"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/default/sa/backend"}}
    ]
    ports = [
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for e in v2["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    v2_sidecar = next(s for s in setup.sidecars if s.instance == "backend-v2-0")
    assert ports == [v2_sidecar.inbound_port]


def test_strict_inbound_requires_a_client_certificate_and_forwards_to_the_app(
    k8s: tuple[Manifests, SidecarSetup],
) -> None:
    _, setup = k8s
    sidecar = next(s for s in setup.sidecars if s.instance == "backend-v1-0")
    config = _config(setup, "backend-v1-0")
    inbound = _by_name(config["static_resources"]["listeners"], INBOUND_LISTENER)
    (chain,) = inbound["filter_chains"]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(
        setup.ca.root_cert_path
    )
    hcm = chain["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["envoy.filters.http.rbac.allow", "envoy.filters.http.router"]
    app = _by_name(config["static_resources"]["clusters"], "inbound|5000||")
    address = app["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"]["port_value"] == sidecar.app_port


def test_the_gateway_calls_the_frontend_sidecar_with_its_own_identity(
    k8s: tuple[Manifests, SidecarSetup],
) -> None:
    manifests, setup = k8s
    config = translate(manifests, local_placement(manifests, setup.inbound_ports()))
    secure_gateway(config, setup, manifests)
    cluster = _by_name(
        config["static_resources"]["clusters"],
        "outbound|8000||frontend-service.default.svc.cluster.local",
    )
    context = _tls(cluster)["common_tls_context"]
    assert context["tls_certificates"][0]["certificate_chain"]["filename"] == str(
        setup.gateway_certs.cert
    )
    assert setup.gateway_certs.identity.endswith("/sa/istio-ingressgateway-service-account")


def _permissive_overlay(where: Path) -> Manifests:
    patch = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default"},
        "spec": {"mtls": {"mode": "PERMISSIVE"}},
    }
    disable = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "v2-plain"},
        "spec": {"selector": {"matchLabels": {"version": "v2"}}, "mtls": {"mode": "DISABLE"}},
    }
    return load(overlay(where, patches=[patch], extra=[disable]))


def test_permissive_takes_both_and_disable_gets_plain_text(tmp_path: Path) -> None:
    manifests = _permissive_overlay(tmp_path / "overlay")
    setup = _prepare(manifests, tmp_path / "state")
    inbound = _by_name(
        _config(setup, "backend-v1-0")["static_resources"]["listeners"], INBOUND_LISTENER
    )
    matches = [c.get("filter_chain_match") for c in inbound["filter_chains"]]
    assert matches == [{"transport_protocol": "tls"}, {"transport_protocol": "raw_buffer"}]
    assert "transport_socket" not in inbound["filter_chains"][1]
    plain = _by_name(
        _config(setup, "backend-v2-0")["static_resources"]["listeners"], INBOUND_LISTENER
    )
    assert [set(c) for c in plain["filter_chains"]] == [{"filters"}]
    clusters = _config(setup, "frontend-0")["static_resources"]["clusters"]
    v2 = _by_name(clusters, f"outbound|5000|v2|{BACKEND}")
    assert "transport_socket" not in v2 and "transport_socket_matches" not in v2
    assert _tls(_by_name(clusters, f"outbound|5000|v1|{BACKEND}"))["sni"].startswith("outbound_")


@pytest.mark.integration
def test_envoy_accepts_every_generated_config(tmp_path: Path) -> None:
    paths = []
    for name, manifests in (("k8s", load(K8S)), ("permissive", _permissive_overlay(tmp_path))):
        setup = _prepare(manifests, tmp_path / name)
        gateway = translate(manifests, local_placement(manifests, setup.inbound_ports()))
        secure_gateway(gateway, setup, manifests)
        path = tmp_path / name / "envoy.yaml"
        path.write_text(yaml.safe_dump(gateway, sort_keys=False))
        paths += [path, *setup.configs.values()]
    assert len(paths) == 10
    validate_all(paths, envoy.envoy_binary())


@pytest.mark.integration
def test_sidecars_left_by_a_killed_mesh_are_stopped(tmp_path: Path) -> None:
    manifests = load(K8S)
    ports = iter([free_port() for _ in range(40)])
    apps = {i: next(ports) for d in manifests.deployments for i in d.instance_names()}
    setup = prepare(manifests, apps, tmp_path, lambda: next(ports))
    sidecar = setup.sidecars[0]
    argv = envoy.command(setup.configs[sidecar.name], base_id=sidecar.admin_port)
    leftover = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # the second sidecar's pid was reused by an unrelated process: left alone
        reused = setup.sidecars[1].name
        record_pids(tmp_path, setup, {sidecar.name: leftover.pid, reused: bystander.pid})
        assert leftover_pids(tmp_path) == [leftover.pid]
        _stop_leftovers(tmp_path)
        assert leftover.wait(timeout=10) != 0
        assert bystander.poll() is None
    finally:
        for proc in (leftover, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_replica_without_a_sidecar_yet_is_called_as_its_deployments_identity(
    k8s: tuple[Manifests, SidecarSetup], tmp_path: Path
) -> None:
    """A generation that adds replicas (backend-v1 to 3) or a Deployment with its own
    service account (backend-v3): the running sidecars call them over mTLS, verifying
    the identity their sidecars will be issued when they start (mesh/loop/sidecar_pods)."""
    _, setup = k8s
    v3 = yaml.safe_load((K8S / "deployments" / "backend-v2.yaml").read_text())
    v3["metadata"]["name"] = "backend-v3"
    v3["spec"]["template"]["spec"]["serviceAccountName"] = "backend-next"
    scaled = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "backend-v1"}, "spec": {"replicas": 3}}  # fmt: skip
    manifests = load(overlay(tmp_path, patches=[scaled], extra=[v3]))
    peers = {s.instance: s for s in setup.peers(manifests)}
    running = {s.instance for s in setup.sidecars}
    assert set(peers) - running == {"backend-v1-2", "backend-v3-0"}
    assert peers["backend-v1-2"].identity == peers["backend-v1-0"].identity
    assert peers["backend-v3-0"].identity == "cluster.local/ns/default/sa/backend-next"
    frontend = next(s for s in setup.sidecars if s.instance == "frontend-0")
    clusters = setup.static_config(manifests, frontend)["static_resources"]["clusters"]
    sans = _tls(_by_name(clusters, f"outbound|5000||{BACKEND}"))["common_tls_context"][
        "validation_context"
    ]["match_typed_subject_alt_names"]
    assert [m["matcher"]["exact"] for m in sans] == [
        "spiffe://cluster.local/ns/default/sa/backend",
        "spiffe://cluster.local/ns/default/sa/backend-next",
    ]


def test_a_new_service_account_is_trusted_beside_the_one_its_running_replicas_hold(
    k8s: tuple[Manifests, SidecarSetup], tmp_path: Path
) -> None:
    """backend-v1's serviceAccountName changes: its running replicas keep the identity
    they were issued, the replicas its roll starts get the new one, and a caller trusts
    both for the v1 subset (and the old one alone for v2, which did not change)."""
    _, setup = k8s
    moved = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "backend-v1"},
             "spec": {"template": {"spec": {"serviceAccountName": "backend-next"}}}}  # fmt: skip
    manifests = load(overlay(tmp_path, patches=[moved]))
    peers = {s.instance: s for s in setup.peers(manifests)}
    assert peers["backend-v1-0"].identity == "cluster.local/ns/default/sa/backend"
    frontend = next(s for s in setup.sidecars if s.instance == "frontend-0")
    clusters = setup.static_config(manifests, frontend)["static_resources"]["clusters"]

    def trusted(cluster: str) -> list[str]:
        context = _tls(_by_name(clusters, cluster))["common_tls_context"]
        return [
            m["matcher"]["exact"]
            for m in context["validation_context"]["match_typed_subject_alt_names"]
        ]

    assert trusted(f"outbound|5000|v1|{BACKEND}") == [
        "spiffe://cluster.local/ns/default/sa/backend",
        "spiffe://cluster.local/ns/default/sa/backend-next",
    ]
    assert trusted(f"outbound|5000|v2|{BACKEND}") == [
        "spiffe://cluster.local/ns/default/sa/backend"
    ]
