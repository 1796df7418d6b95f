"""Cross-object rules, one module per area. Each exposes ``check(index)``
yielding findings; none of them raises on a malformed object (the schema
check reports those), so every access here is defensive."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mesh.check.findings import Finding
from mesh.check.index import Index
from mesh.check.rules import (
    delegation,
    deployments,
    destinations,
    env_urls,
    gateway_api,
    gateway_credentials,
    gateway_ports,
    injection,
    istio_annotations,
    jwt_routes,
    local_mesh,
    progressive,
    routing,
    security,
    telemetry,
    workloads,
)

Rule = Callable[[Index], Iterator[Finding]]

ALL_RULES: tuple[Rule, ...] = (
    routing.check,
    delegation.check,
    jwt_routes.check,
    destinations.check,
    workloads.check,
    env_urls.check,
    istio_annotations.check,
    security.check,
    telemetry.check,
    local_mesh.check,
    progressive.check,
    gateway_api.check,
    gateway_credentials.check,
    gateway_ports.check,
    injection.check,
    deployments.check,
)
