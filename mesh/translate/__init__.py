"""Istio manifests + where things run -> one Envoy v3 bootstrap (a pure function, no I/O).

    translate(manifests, placement) -> dict      the bootstrap, ready for yaml.safe_dump
    local_placement(...) / compose_placement(...)  the two targets

Follows istiod's mapping (reference/istio-to-envoy.md); docs/istio-envoy-mapping.md has
the table. Any field it cannot honour raises TranslationError naming file, resource and
field; PeerAuthentication, AuthorizationPolicy and Telemetry are reported by the caller
as not enforced locally (Manifests.not_enforced()).
"""

from __future__ import annotations

from typing import Any

from mesh.manifests import Manifests
from mesh.translate.clusters import build_clusters
from mesh.translate.gateways import gateway_listeners
from mesh.translate.listeners import check_virtual_services, outbound_listeners
from mesh.translate.placement import (
    COMPOSE_SERVICE_NAME,
    TARGETS,
    Placement,
    Target,
    compose_placement,
    local_placement,
)
from mesh.translate.telemetry import check_telemetries
from mesh.translate.tracing import add_collector

__all__ = [
    "COMPOSE_SERVICE_NAME",
    "TARGETS",
    "Placement",
    "Target",
    "compose_placement",
    "local_placement",
    "translate",
]


def translate(manifests: Manifests, placement: Placement) -> dict[str, Any]:
    check_virtual_services(manifests)
    check_telemetries(manifests)
    clusters = build_clusters(manifests, placement)
    listeners = gateway_listeners(manifests, placement) + outbound_listeners(manifests, placement)
    bootstrap = {
        "node": {"id": f"taskmesh-{placement.target}", "cluster": "taskmesh"},
        "admin": {
            "address": {
                "socket_address": {
                    "address": placement.admin_address,
                    "port_value": placement.admin_port,
                }
            }
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }
    add_collector(bootstrap, placement.traces)
    return bootstrap
