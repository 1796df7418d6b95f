"""Services + DestinationRules -> Envoy clusters, the way istiod builds outbound clusters.

One cluster `outbound|PORT||FQDN` per Service port (every endpoint) and one
`outbound|PORT|SUBSET|FQDN` per DestinationRule subset (endpoints whose pod labels also
match the subset labels). Istio's defaults, not Envoy's: thresholds 2^32-1 with
track_remaining, connect_timeout 10s, LEAST_REQUEST (reference/istio-to-envoy.md §2).
"""

from __future__ import annotations

from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import DestinationRule, Manifests, Service, ServicePort
from mesh.translate.fields import Node, spec
from mesh.translate.metadata import cluster_metadata
from mesh.translate.placement import Placement
from mesh.translate.policy import (
    MAX_U32,
    connection_pool,
    load_balancer,
    outlier_detection,
    policy_blocks,
    subset_blocks,
)
from mesh.translate.probes import ReadinessProbe, as_health_check, readiness_probe

DEFAULT_CONNECT_TIMEOUT = "10s"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP1, HTTP2 = "http1", "http2"


def cluster_name(port: int, subset: str, fqdn: str) -> str:
    return f"outbound|{port}|{subset}|{fqdn}"


def port_protocol(service: Service, port: ServicePort) -> str:
    """HTTP/1.1 for `http`/`http-*` (or appProtocol http), HTTP/2 for http2/grpc."""
    proto = (port.app_protocol or (port.name or "").split("-")[0]).lower()
    if proto in ("http", "https"):
        return HTTP1
    if proto in ("http2", "grpc", "grpc-web", "h2c"):
        return HTTP2
    field = f"spec.ports[{port.index}]." + ("appProtocol" if port.app_protocol else "name")
    raise TranslationError(
        f"{service.where()}: {field}: protocol {proto or '(unnamed)'!r} is not supported by "
        f"the local mesh (HTTP only: name the port http or http-*, or set appProtocol: http)"
    )


def resolve_host(manifests: Manifests, host: str, namespace: str) -> Service | None:
    """The Service a VirtualService/DestinationRule host names (short names resolve in NS)."""
    for svc in manifests.services:
        short = {svc.fqdn, f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc"}
        if host in short or (host == svc.name and svc.namespace == namespace):
            return svc
    return None


def destination_rule_for(manifests: Manifests, service: Service) -> DestinationRule | None:
    rules = []
    for dr in manifests.destination_rules:
        host = spec(dr).at("host")
        if resolve_host(manifests, host.str(), dr.namespace) is service:
            rules.append(dr)
    if len(rules) > 1:
        raise TranslationError(
            f"{rules[1].where()}: spec.host: {service.name} already has DestinationRule "
            f"{rules[0].name} ({rules[0].source}); merge them into one"
        )
    return rules[0] if rules else None


def check_destination_rules(manifests: Manifests) -> None:
    """Every DestinationRule must apply to a Service of the set and use supported fields."""
    for dr in manifests.destination_rules:
        root = spec(dr).only("host", "trafficPolicy", "subsets", "exportTo")
        if resolve_host(manifests, root.at("host").str(), dr.namespace) is None:
            raise root.at("host").error(
                f"{root.at('host').value!r} matches no Service of {manifests.root}"
            )
        _check_export_to(root)
        names = set()
        for subset in root.items("subsets"):
            subset.only("name", "labels", "trafficPolicy")
            name = subset.at("name").str()
            if name in names:
                raise subset.at("name").error(f"duplicates subset {name!r}")
            names.add(name)


def _check_export_to(root: Node) -> None:
    for entry in root.items("exportTo"):
        if entry.str() not in ("*", ".", root.obj.namespace):
            raise entry.error(f"{entry.value!r} {'is not supported by the local mesh'}")


def build_clusters(manifests: Manifests, placement: Placement) -> list[dict[str, Any]]:
    from mesh.translate.tcp import as_tcp_cluster, is_tcp  # it builds on this module

    check_destination_rules(manifests)
    clusters = []
    for service in manifests.services:
        if not service.selector:
            raise TranslationError(
                f"{service.where()}: spec.selector: a Service without a selector has no "
                f"endpoints the local mesh can run"
            )
        dr = destination_rule_for(manifests, service)
        root = spec(dr) if dr else None
        for port in service.ports:
            tcp = is_tcp(port)  # built as HTTP/1.1, then without the HTTP options
            protocol = HTTP1 if tcp else port_protocol(service, port)
            top, _ = policy_blocks(root.get("trafficPolicy") if root else None, port.port, True)
            clusters.append(_cluster(manifests, placement, service, port, protocol, "", {}, top))
            if tcp:
                as_tcp_cluster(clusters[-1])
            clusters[-1]["metadata"] = _metadata(service, dr, "")
            for subset in root.items("subsets") if root else []:
                blocks = subset_blocks(top, subset, port.port)
                labels = {str(k): str(v) for k, v in (subset.at("labels").value or {}).items()}
                name = subset.at("name").str()
                clusters.append(
                    _cluster(manifests, placement, service, port, protocol, name, labels, blocks)
                )
                if tcp:
                    as_tcp_cluster(clusters[-1])
                clusters[-1]["metadata"] = _metadata(service, dr, name)
    return clusters


def _metadata(service: Service, dr: DestinationRule | None, subset: str) -> dict[str, Any]:
    return cluster_metadata(service.fqdn, service.name, service.namespace, dr, subset)


def _cluster(
    manifests: Manifests,
    placement: Placement,
    service: Service,
    port: ServicePort,
    protocol: str,
    subset: str,
    subset_labels: dict[str, str],
    blocks: dict[str, Node],
) -> dict[str, Any]:
    name = cluster_name(port.port, subset, service.fqdn)
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STRICT_DNS" if placement.dns else "STATIC",
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "lb_policy": "LEAST_REQUEST",
    }
    if placement.dns:
        cluster["dns_lookup_family"] = "V4_ONLY"
    thresholds: dict[str, Any] = {
        "max_connections": MAX_U32,
        "max_pending_requests": MAX_U32,
        "max_requests": MAX_U32,
        "max_retries": MAX_U32,
        "track_remaining": True,
    }
    options: dict[str, Any] = {"@type": f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}"}
    common: dict[str, Any] = {}
    explicit = {HTTP1: {"http_protocol_options": {}}, HTTP2: {"http2_protocol_options": {}}}
    http_config: dict[str, Any] = {"explicit_http_config": explicit[protocol]}
    if "connectionPool" in blocks:
        http_config = connection_pool(blocks["connectionPool"], cluster, thresholds, common)
        http_config = http_config or {"explicit_http_config": explicit[protocol]}
    cluster["circuit_breakers"] = {"thresholds": [thresholds]}
    if common:
        options["common_http_protocol_options"] = common
    options.update(http_config)
    cluster["typed_extension_protocol_options"] = {HTTP_PROTOCOL_OPTIONS: options}
    if "loadBalancer" in blocks:
        cluster["lb_policy"] = load_balancer(blocks["loadBalancer"])
    if "outlierDetection" in blocks:
        panic, outlier = outlier_detection(blocks["outlierDetection"])
        cluster["outlier_detection"] = outlier
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": panic}}
    cluster["load_assignment"] = {
        "cluster_name": name,
        "endpoints": [
            {"lb_endpoints": _endpoints(manifests, placement, service, port, subset_labels)}
        ],
    }
    if not placement.dns:  # the runner probes (mesh/endpoints.py); errors name the field
        for d in _selected(manifests, service, subset_labels):
            readiness_probe(d, _container_port(d, service, port))
        return cluster
    checks = health_checks(manifests, service, port, subset_labels)
    if checks:
        cluster["health_checks"] = checks
        if "outlier_detection" in cluster:
            # Envoy lets a passing health check end an ejection early; the kubelet's probe
            # has no such power in Istio, so an ejected host stays out baseEjectionTime.
            cluster["outlier_detection"]["successful_active_health_check_uneject_host"] = False
    return cluster


def _selected(manifests: Manifests, service: Service, subset_labels: dict[str, str]) -> list[Any]:
    wanted = {**service.selector, **subset_labels}
    return [
        d
        for d in manifests.deployments
        if all(d.template_labels.get(k) == v for k, v in wanted.items())
    ]


def health_checks(
    manifests: Manifests, service: Service, port: ServicePort, subset_labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Compose target: the endpoints' readinessProbe as Envoy's active health check.

    There no endpoints controller drops a not-ready container, so Envoy runs the probe
    itself. Every Deployment behind one cluster must probe alike (a cluster has one
    health check). The local target checks the probes here too but runs them in the
    runner, which publishes the ready endpoints over EDS (mesh/endpoints.py), as Istio.
    """
    checks: list[tuple[str, ReadinessProbe]] = []
    for d in _selected(manifests, service, subset_labels):
        probe = readiness_probe(d, _container_port(d, service, port))
        if probe is not None:
            checks.append((d.name, probe))
    if not checks:
        return []
    first_name, first = checks[0]
    for other_name, other in checks[1:]:
        if other != first:
            raise TranslationError(
                f"{service.where()}: Deployments {first_name} and {other_name} behind one "
                f"Service port probe readiness differently; the compose target health-checks "
                f"each cluster with one probe: make their readinessProbes equal"
            )
    return [as_health_check(first)]


def endpoint_probes(manifests: Manifests) -> dict[str, ReadinessProbe]:
    """Deployment name -> its readinessProbe, for the Deployments behind a Service port
    (the others get no traffic to gate). Checked against every serving port."""
    probes: dict[str, ReadinessProbe] = {}
    for service in manifests.services:
        for port in service.ports:
            for d in _selected(manifests, service, {}):
                probe = readiness_probe(d, _container_port(d, service, port))
                if probe is not None:
                    probes[d.name] = probe
    return probes


def _endpoints(
    manifests: Manifests,
    placement: Placement,
    service: Service,
    port: ServicePort,
    subset_labels: dict[str, str],
) -> list[dict[str, Any]]:
    wanted = {**service.selector, **subset_labels}
    out = []
    for d in manifests.deployments:
        if not all(d.template_labels.get(k) == v for k, v in wanted.items()):
            continue
        container_port = _container_port(d, service, port)
        for instance in d.instance_names():
            host, number = placement.endpoint(instance, container_port)
            out.append(
                {
                    "endpoint": {
                        "address": {"socket_address": {"address": host, "port_value": number}},
                        "hostname": instance,
                    }
                }
            )
    return out


def _container_port(d: Any, service: Service, port: ServicePort) -> int:
    target = port.target_port if port.target_port is not None else port.port
    if isinstance(target, int):
        return target
    for c in d.containers:
        for p in c.ports:
            if p.name == target:
                return p.container_port
    raise TranslationError(
        f"{service.where()}: spec.ports[{port.index}].targetPort: no container port named "
        f"{target!r} in Deployment/{d.name} ({d.source})"
    )
