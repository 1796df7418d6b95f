"""One Envoy bootstrap per workload instance (its sidecar), and mTLS for the gateway.

A sidecar has, as in Istio:
- an inbound listener (the pod's port, here a loopback port of its own) that terminates
  mutual TLS with the workload's certificate (client certificate required under STRICT;
  PERMISSIVE also takes plain text, told apart by the TLS inspector), runs the RBAC
  filters of the AuthorizationPolicies that select the workload, and forwards to the
  app's own loopback port (cluster `inbound|PORT||`);
- the outbound listeners and clusters the shared router has (the same translation), but
  with each cluster's endpoints at the destination sidecars' inbound ports and an
  UpstreamTlsContext: the workload's certificate, Istio's SNI
  (`outbound_.5000_.v1_.backend-service.default.svc.cluster.local`) and ALPN, and the
  server's SPIFFE identity checked against the service accounts of the endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh.ca import CertPair, spiffe_id
from mesh.manifests import Manifests, Service
from mesh.sidecars.plan import Sidecar, deployment_identity
from mesh.sidecars.rbac import rbac_filters
from mesh.translate.clusters import (
    DEFAULT_CONNECT_TIMEOUT,
    HTTP_PROTOCOL_OPTIONS,
    build_clusters,
    destination_rule_for,
)
from mesh.translate.fields import spec
from mesh.translate.hcm import HCM, ISTIO_SERVER_NAME, istio_hcm, route_config, router_filter
from mesh.translate.listeners import outbound_listeners
from mesh.translate.placement import Placement
from mesh.translate.policy import MAX_U32, connection_pool, policy_blocks
from mesh.translate.telemetry import SERVER, tracing_spec
from mesh.translate.tracing import add_collector, add_tracing

TLS_SOCKET = "envoy.transport_sockets.tls"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)
TLS_INSPECTOR = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
ISTIO_ALPN = ["istio-peer-exchange", "istio"]
INBOUND_LISTENER = "virtualInbound"
PROBE_MATCH = {"probe": "plaintext"}
RAW_BUFFER = {
    "name": "envoy.transport_sockets.raw_buffer",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
    },
}


def istio_sni(cluster: str) -> str:
    """`outbound|5000|v1|fqdn` -> `outbound_.5000_.v1_.fqdn` (no subset: `outbound_.5000_._.
    fqdn`), as istiod's BuildDNSSrvSubsetKey."""
    direction, port, subset, host = cluster.split("|")
    return f"{direction}_.{port}_.{subset}_.{host}"


def _common_tls(certs: CertPair, root_cert: Path) -> dict[str, Any]:
    return {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": str(certs.cert)},
                "private_key": {"filename": str(certs.key)},
            }
        ],
        "validation_context": {"trusted_ca": {"filename": str(root_cert)}},
    }


def upstream_tls(
    cluster: str, certs: CertPair, root_cert: Path, server_identities: list[str]
) -> dict[str, Any]:
    common = _common_tls(certs, root_cert)
    common["alpn_protocols"] = ISTIO_ALPN
    if server_identities:
        common["validation_context"]["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": spiffe_id(i)}} for i in server_identities
        ]
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "common_tls_context": common,
            "sni": istio_sni(cluster),
        },
    }


def downstream_tls(certs: CertPair, root_cert: Path) -> dict[str, Any]:
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": _common_tls(certs, root_cert),
            "require_client_certificate": True,
        },
    }


def secure_clusters(
    clusters: list[dict[str, Any]], sidecars: list[Sidecar], certs: CertPair, root_cert: Path
) -> None:
    """Give every outbound cluster mTLS to its endpoints' sidecars (in place), unless all
    of them have mTLS DISABLEd (Istio's auto-mTLS then sends plain text)."""
    by_instance = {s.instance: s for s in sidecars}
    for cluster in clusters:
        if not cluster["name"].startswith("outbound|"):
            continue
        endpoints = [
            by_instance[e["endpoint"]["hostname"]]
            for group in cluster["load_assignment"]["endpoints"]
            for e in group["lb_endpoints"]
            if e["endpoint"].get("hostname") in by_instance
        ]
        if endpoints and all(s.mode == "DISABLE" for s in endpoints):
            continue
        # a running replica's own identity, and the one its Deployment gives a new replica
        # now: while a changed serviceAccountName rolls, both serve the Service
        identities = sorted(
            {s.identity for s in endpoints} | {deployment_identity(s.deployment) for s in endpoints}
        )
        tls = upstream_tls(cluster["name"], certs, root_cert, identities)
        if cluster.get("health_checks"):
            _plain_health_checks(cluster, by_instance, tls)
        else:
            cluster["transport_socket"] = tls


def _plain_health_checks(
    cluster: dict[str, Any], by_instance: dict[str, Sidecar], tls: dict[str, Any]
) -> None:
    """Readiness probes go to the app's own port in plain text, past its sidecar (as the
    kubelet's do through Istio's probe rewrite): the RBAC of a sidecar would refuse them.
    Requests still go over mTLS to the sidecar (the transport socket without criteria)."""
    cluster["transport_socket_matches"] = [
        {"name": "probe", "match": dict(PROBE_MATCH), "transport_socket": RAW_BUFFER},
        {"name": "istio-mtls", "match": {}, "transport_socket": tls},
    ]
    for check in cluster["health_checks"]:
        check["transport_socket_match_criteria"] = dict(PROBE_MATCH)
    for group in cluster["load_assignment"]["endpoints"]:
        for entry in group["lb_endpoints"]:
            sidecar = by_instance.get(entry["endpoint"].get("hostname", ""))
            if sidecar is not None:
                entry["endpoint"]["health_check_config"] = {"port_value": sidecar.app_port}


def sidecar_placement(
    sidecar: Sidecar, sidecars: list[Sidecar], traces: tuple[str, int] | None = None
) -> Placement:
    """Where SIDECAR's outbound side sends: every instance at its sidecar's inbound port."""
    return Placement(
        target="local",
        listen_address="127.0.0.1",
        admin_address="127.0.0.1",
        admin_port=sidecar.admin_port,
        gateway_ports={},
        service_ports=dict(sidecar.outbound),
        instances={s.instance: ("127.0.0.1", s.inbound_port) for s in sidecars},
        traces=traces,
        caller=(sidecar.deployment.template_labels, sidecar.deployment.namespace),
    )


def _inbound_service(manifests: Manifests, sidecar: Sidecar) -> tuple[Service, int] | None:
    """The first Service (and its port) that sends traffic to this sidecar's workload."""
    labels = sidecar.deployment.template_labels
    for service in manifests.services:
        if service.namespace != sidecar.deployment.namespace or not service.selector:
            continue
        if all(labels.get(k) == v for k, v in service.selector.items()) and service.ports:
            return service, service.ports[0].port
    return None


def inbound_pool(manifests: Manifests, sidecar: Sidecar) -> dict[str, Any]:
    """The inbound cluster's connection settings, as cluster_builder.go buildInboundCluster
    sets them: Istio's default thresholds (2^32-1) with the top-level (or port-level)
    connectionPool of the DestinationRule of the workload's Service, so the server has
    the capacity (or the limits) the DestinationRule gives its clients."""
    cluster: dict[str, Any] = {"connect_timeout": DEFAULT_CONNECT_TIMEOUT}
    thresholds: dict[str, Any] = {
        "max_connections": MAX_U32,
        "max_pending_requests": MAX_U32,
        "max_requests": MAX_U32,
        "max_retries": MAX_U32,
        "track_remaining": True,
    }
    common: dict[str, Any] = {}
    found = _inbound_service(manifests, sidecar)
    dr = destination_rule_for(manifests, found[0]) if found else None
    if found and dr is not None:
        blocks, _ = policy_blocks(spec(dr).get("trafficPolicy"), found[1], True)
        if "connectionPool" in blocks:  # h2 upgrade and the rest apply outbound only
            connection_pool(blocks["connectionPool"], cluster, thresholds, common)
    cluster["circuit_breakers"] = {"thresholds": [thresholds]}
    if common:
        cluster["typed_extension_protocol_options"] = {
            HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}",
                "common_http_protocol_options": common,
                "explicit_http_config": {"http_protocol_options": {}},
            }
        }
    return cluster


def _inbound_cluster(manifests: Manifests, sidecar: Sidecar) -> dict[str, Any]:
    return {
        "name": sidecar.inbound_cluster,
        "type": "STATIC",
        **inbound_pool(manifests, sidecar),
        "load_assignment": {
            "cluster_name": sidecar.inbound_cluster,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": "127.0.0.1",
                                        "port_value": sidecar.app_port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def _inbound_hcm(
    manifests: Manifests, sidecar: Sidecar, traces: tuple[str, int] | None
) -> dict[str, Any]:
    route = {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {"cluster": sidecar.inbound_cluster, "timeout": "0s"},
    }
    filters = rbac_filters(manifests, sidecar.deployment)
    filters.append(router_filter())
    vhost = {"name": f"inbound|http|{sidecar.container_port}", "domains": ["*"], "routes": [route]}
    # istiod's HCM defaults, normalize_path among them (pathNormalization BASE): RBAC
    # sees `/api/../admin` as `/admin`.
    config = istio_hcm(
        f"inbound_{sidecar.container_port}",
        route_config(sidecar.inbound_cluster, [vhost]),
        filters,
        server_name=ISTIO_SERVER_NAME,
    )
    # The app sees who called it, as in the cluster (x-forwarded-client-cert).
    config["forward_client_cert_details"] = "APPEND_FORWARD"
    config["set_current_client_cert_details"] = {"subject": True, "dns": True, "uri": True}
    spec = tracing_spec(manifests, sidecar.deployment.namespace, SERVER)
    add_tracing(config, f"{sidecar.deployment.name}.inbound", traces, spec)
    return {"name": HCM, "typed_config": config}


def inbound_listener(
    manifests: Manifests,
    sidecar: Sidecar,
    certs: CertPair,
    root_cert: Path,
    traces: tuple[str, int] | None = None,
) -> dict[str, Any]:
    hcm = _inbound_hcm(manifests, sidecar, traces)
    tls_chain = {"filters": [hcm], "transport_socket": downstream_tls(certs, root_cert)}
    listener: dict[str, Any] = {
        "name": INBOUND_LISTENER,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": sidecar.inbound_port}},
    }
    if sidecar.mode == "STRICT":
        listener["filter_chains"] = [tls_chain]
    elif sidecar.mode == "DISABLE":
        listener["filter_chains"] = [{"filters": [hcm]}]
    else:  # PERMISSIVE: mTLS when the client speaks TLS, plain text otherwise
        inspector = {"@type": TLS_INSPECTOR}
        listener["listener_filters"] = [
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": inspector}
        ]
        tls_chain["filter_chain_match"] = {"transport_protocol": "tls"}
        plain = {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm]}
        listener["filter_chains"] = [tls_chain, plain]
    return listener


def sidecar_bootstrap(
    manifests: Manifests,
    sidecar: Sidecar,
    sidecars: list[Sidecar],
    certs: CertPair,
    root_cert: Path,
    traces: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The whole Envoy bootstrap of SIDECAR (admin on its own port); TRACES: the trace
    receiver, as the shared router's placement names it."""
    placement = sidecar_placement(sidecar, sidecars, traces)
    clusters = build_clusters(manifests, placement)
    secure_clusters(clusters, sidecars, certs, root_cert)
    clusters.append(_inbound_cluster(manifests, sidecar))
    listeners = outbound_listeners(manifests, placement)
    listeners.append(inbound_listener(manifests, sidecar, certs, root_cert, traces))
    ns = sidecar.deployment.namespace
    bootstrap = {
        "node": {
            "id": f"sidecar~127.0.0.1~{sidecar.instance}.{ns}~{ns}.svc.cluster.local",
            "cluster": f"{sidecar.deployment.name}.{ns}",
        },
        "admin": {
            "address": {
                "socket_address": {"address": "127.0.0.1", "port_value": sidecar.admin_port}
            }
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }
    add_collector(bootstrap, traces)
    return bootstrap
