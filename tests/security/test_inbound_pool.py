"""The --sidecars inbound cluster carries istiod's circuit breakers (issue 14 item 4):
Istio's 2^32-1 defaults, with the connectionPool of the workload Service's
DestinationRule (cluster_builder.go buildInboundCluster), not Envoy's 1024 defaults."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import envoy
from mesh.manifests import Manifests, load
from mesh.sidecars import SidecarSetup, prepare
from mesh.translate.policy import MAX_U32
from tests.mesh.support import K8S, VARIANTS

OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _setup(manifests: Manifests, state: Path) -> SidecarSetup:
    ports = itertools.count(32000)
    apps = {i: next(ports) for d in manifests.deployments for i in d.instance_names()}
    return prepare(manifests, apps, state, lambda: next(ports))


def inbound(setup: SidecarSetup, instance: str) -> tuple[Path, dict[str, Any]]:
    sidecar = next(s for s in setup.sidecars if s.instance == instance)
    path = setup.configs[sidecar.name]
    config = yaml.safe_load(path.read_text())
    clusters = config["static_resources"]["clusters"]
    return path, next(c for c in clusters if c["name"] == sidecar.inbound_cluster)


def test_circuit_breaker_variant_limits_the_server_side_too(tmp_path: Path) -> None:
    setup = _setup(load(VARIANTS / "circuit-breaker"), tmp_path)
    path, cluster = inbound(setup, "backend-v1-0")
    assert cluster["circuit_breakers"]["thresholds"] == [
        {
            "max_connections": 1,
            "max_pending_requests": 1,
            "max_requests": MAX_U32,
            "max_retries": MAX_U32,
            "track_remaining": True,
        }
    ]
    options = cluster["typed_extension_protocol_options"][OPTIONS]
    assert options["common_http_protocol_options"] == {"max_requests_per_connection": 1}
    envoy.validate(path)


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        # DestinationRule frontend sets only http1MaxPendingRequests: 200
        (
            "frontend-0",
            {"max_connections": MAX_U32, "max_pending_requests": 200, "max_requests": MAX_U32},
        ),
        # DestinationRule backend: maxConnections 100, pending 100, requests 1000, retries 10
        ("backend-v1-0", {"max_connections": 100, "max_requests": 1000, "max_retries": 10}),
    ],
)
def test_thresholds_are_istios_defaults_plus_the_pool(
    tmp_path: Path, instance: str, expected: dict[str, int]
) -> None:
    _, cluster = inbound(_setup(load(K8S), tmp_path), instance)
    (thresholds,) = cluster["circuit_breakers"]["thresholds"]
    assert {k: thresholds[k] for k in expected} == expected
    assert cluster["connect_timeout"] == ("2s" if instance.startswith("backend") else "10s")
