"""A Service's TCP port (name `tcp`/`tcp-*`, or appProtocol tcp) -> Envoy's tcp_proxy.

What istiod builds for a sidecar's outbound TCP port (pilot/pkg/networking/core/
networkfilter.go, buildOutboundNetworkFiltersWithSingleDestination; listener.go):
a listener whose one filter chain is `envoy.filters.network.tcp_proxy` to the cluster
`outbound|PORT||FQDN`, stat_prefix the cluster name, idle_timeout and
max_downstream_connection_duration from the DestinationRule's connectionPool.tcp
(`idleTimeout`, `maxConnectionDuration`); no HTTP connection manager, no routes.
The cluster is built as for HTTP (clusters.py; istiod's cluster_traffic_policy.go
applyConnectionPool: `tcp.maxConnections` -> circuit_breakers max_connections,
`tcp.connectTimeout` -> connect_timeout, tcpKeepalive -> upstream_connection_options)
but carries no HTTP protocol options: the bytes are not HTTP.
"""

from __future__ import annotations

from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Manifests, Service, ServicePort
from mesh.translate.clusters import cluster_name, destination_rule_for
from mesh.translate.fields import spec
from mesh.translate.placement import Placement

TCP = "tcp"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TCP_PROTOCOLS = ("tcp", "mongo", "mysql", "redis")  # istiod's protocol.Instance.IsTCP()


def is_tcp(port: ServicePort) -> bool:
    """Istio's protocol selection: appProtocol first, else the port name's prefix."""
    proto = (port.app_protocol or (port.name or "").split("-")[0]).lower()
    return proto in TCP_PROTOCOLS


def tcp_proxy(
    manifests: Manifests, service: Service, port: ServicePort, stat_prefix: str = ""
) -> dict[str, Any]:
    """The tcp_proxy network filter for SERVICE:PORT with its DestinationRule's tcp timeouts."""
    cluster = cluster_name(port.port, "", service.fqdn)
    config: dict[str, Any] = {
        "@type": TCP_PROXY_TYPE,
        "stat_prefix": stat_prefix or cluster,
        "cluster": cluster,
    }
    dr = destination_rule_for(manifests, service)
    pool = spec(dr).at("trafficPolicy").get("connectionPool") if dr else None
    tcp = pool.get("tcp") if pool is not None else None
    if tcp is not None:
        if tcp.has("idleTimeout"):
            config["idle_timeout"] = tcp.at("idleTimeout").duration()
        if tcp.has("maxConnectionDuration"):
            config["max_downstream_connection_duration"] = tcp.at(
                "maxConnectionDuration"
            ).duration()
    return {"name": TCP_PROXY, "typed_config": config}


def outbound_tcp_listener(
    manifests: Manifests, placement: Placement, service: Service, port: ServicePort
) -> dict[str, Any]:
    """The caller's sidecar listener for a TCP Service port, on its local port."""
    local_port = placement.service_ports[(service.name, port.port)]
    return {
        "name": f"outbound_{service.fqdn}:{port.port}",
        "address": {
            "socket_address": {"address": placement.listen_address, "port_value": local_port}
        },
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [tcp_proxy(manifests, service, port)]}],
    }


def refuse_with_sidecars(manifests: Manifests) -> None:
    """`mesh up --sidecars` proxies HTTP between sidecars (mTLS and RBAC on requests);
    a TCP Service port would need inbound tcp_proxy chains it does not build."""
    for service in manifests.services:
        for port in service.ports:
            if is_tcp(port):
                field = "appProtocol" if port.app_protocol else "name"
                raise TranslationError(
                    f"{service.where()}: spec.ports[{port.index}].{field}: a TCP port runs "
                    f"only without --sidecars in the local mesh (its sidecars proxy HTTP)"
                )


def as_tcp_cluster(cluster: dict[str, Any]) -> dict[str, Any]:
    """An outbound cluster built for HTTP, for a TCP port: no HTTP protocol options."""
    cluster.pop("typed_extension_protocol_options", None)
    return cluster
