"""readinessProbe -> Envoy active health check (compose target: no kubelet there either).

Unsupported probes are errors naming the field for every target (the local runner runs
the probes itself, so it refuses the same ones)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mesh.errors import TranslationError
from mesh.manifests import Manifests, load
from mesh.translate import compose_placement, translate
from tests.mesh.support import K8S, backend_cluster, cluster, local_config


def probe_of(deployment: str) -> dict[str, Any]:
    doc = yaml.safe_load((K8S / "deployments" / f"{deployment}.yaml").read_text())
    return doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def with_probes(probes: dict[str, dict[str, Any] | None]) -> Manifests:
    """k8s/ with the readinessProbe of each named Deployment replaced (None: removed).
    Edited in memory: kustomize patches cannot edit one list entry (strategic merge)."""
    manifests = load(K8S)
    for d in manifests.deployments:
        if d.name in probes:
            container = d.raw["spec"]["template"]["spec"]["containers"][0]
            container.pop("readinessProbe", None)
            if probes[d.name] is not None:
                container["readinessProbe"] = probes[d.name]
    return manifests


def compose(manifests: Manifests) -> dict[str, Any]:
    return translate(manifests, compose_placement(manifests))


def test_every_backend_cluster_runs_the_deployments_readiness_probe() -> None:
    probe = probe_of("backend-v1")
    config = compose(load(K8S))
    for subset in ("", "v1", "v2"):
        (check,) = cluster(config, backend_cluster(subset))["health_checks"]
        assert check["http_health_check"]["path"] == probe["httpGet"]["path"]
        assert check["interval"] == f"{probe['periodSeconds']}s"
        # probed with no traffic too, as the kubelet does (Envoy's default is 60s)
        assert check["no_traffic_interval"] == check["interval"]
        assert check["unhealthy_threshold"] == probe["failureThreshold"]
        assert check["healthy_threshold"] == probe.get("successThreshold", 1)


def test_a_deployment_without_probe_gets_no_health_check() -> None:
    config = compose(with_probes({"backend-v1": None, "backend-v2": None}))
    assert "health_checks" not in cluster(config, backend_cluster("v1"))
    assert "health_checks" in cluster(
        config, "outbound|8000||frontend-service.default.svc.cluster.local"
    )


def test_a_tcp_probe_becomes_a_tcp_health_check() -> None:
    tcp = {"tcpSocket": {"port": "http"}, "periodSeconds": 3}
    manifests = with_probes({"backend-v1": tcp, "backend-v2": tcp})
    (check,) = cluster(compose(manifests), backend_cluster("v1"))["health_checks"]
    assert check["tcp_health_check"] == {}
    assert check["interval"] == "3s"


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ({"exec": {"command": ["true"]}}, "readinessProbe.exec"),
        ({"httpGet": {"path": "/readyz", "port": 9999}}, "readinessProbe.httpGet.port"),
        ({"httpGet": {"path": "/readyz", "port": "metrics"}}, "readinessProbe.httpGet.port"),
        ({"httpGet": {"path": "/r", "port": "http", "scheme": "HTTPS"}}, "httpGet.scheme"),
    ],
)
@pytest.mark.parametrize("target", ["local", "compose"])
def test_a_probe_the_local_mesh_cannot_run_is_an_error_naming_the_field(
    probe: dict[str, Any], field: str, target: str
) -> None:
    build = local_config if target == "local" else compose
    with pytest.raises(TranslationError) as info:
        build(with_probes({"backend-v1": probe}))
    message = str(info.value)
    assert field in message
    assert "Deployment/backend-v1" in message


def test_deployments_behind_one_cluster_must_probe_alike() -> None:
    other = {**probe_of("backend-v2"), "periodSeconds": 7}
    with pytest.raises(TranslationError, match="backend-v1 and backend-v2"):
        compose(with_probes({"backend-v2": other}))


def test_a_passing_health_check_does_not_cut_an_ejection_short() -> None:
    """/readyz passes while /api/* fails: the host must stay ejected baseEjectionTime."""
    outlier = cluster(compose(load(K8S)), backend_cluster("v1"))["outlier_detection"]
    assert outlier["successful_active_health_check_uneject_host"] is False
