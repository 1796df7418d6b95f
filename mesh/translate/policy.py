"""DestinationRule traffic policies -> Envoy cluster settings, as istiod applies them.

Which blocks apply to a cluster (``policy_blocks``, ``subset_blocks``: pilot/pkg/networking/
util/util.go GetPortLevelTrafficPolicy, MergeSubsetTrafficPolicy) and what each block
sets (``connection_pool``, ``load_balancer``, ``outlier_detection``:
pilot/pkg/networking/core/cluster_traffic_policy.go). Used for the outbound clusters
(clusters.py) and the --sidecars inbound cluster (``inbound_pool``).
"""

from __future__ import annotations

from typing import Any

from mesh.translate.fields import Node

MAX_U32 = 4294967295
POLICY_BLOCKS = ("connectionPool", "outlierDetection", "loadBalancer")
LB_POLICIES = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "LEAST_CONN": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
}


def policy_blocks(
    policy: Node | None, port: int, allow_port_level: bool
) -> tuple[dict[str, Node], bool]:
    """The blocks of a trafficPolicy for PORT, and whether a portLevelSettings entry
    decided them. The first entry for PORT replaces the policy wholesale: a block it
    leaves out is unset, not inherited (pilot/pkg/networking/util/util.go
    GetPortLevelTrafficPolicy)."""
    if policy is None:
        return {}, False
    keys = (*POLICY_BLOCKS, "portLevelSettings") if allow_port_level else POLICY_BLOCKS
    policy.only(*keys)
    blocks = {k: policy.at(k) for k in POLICY_BLOCKS if policy.has(k)}
    port_level = None
    for entry in policy.items("portLevelSettings"):
        entry.only("port", *POLICY_BLOCKS)
        number = entry.at("port").only("number").at("number").int(1, 65535)
        if number == port and port_level is None:
            port_level = entry
    if port_level is None:
        return blocks, False
    return {k: port_level.at(k) for k in POLICY_BLOCKS if port_level.has(k)}, True


def subset_blocks(top: dict[str, Node], subset: Node, port: int) -> dict[str, Node]:
    """util.MergeSubsetTrafficPolicy: the subset's blocks replace the DestinationRule's
    one by one, unless the subset has portLevelSettings for PORT, which replace them all
    (model/destination_rule.go MergeTrafficPolicy with hasPortLevel)."""
    own, port_level = policy_blocks(subset.get("trafficPolicy"), port, True)
    return own if port_level else {**top, **own}


def connection_pool(
    node: Node, cluster: dict[str, Any], thresholds: dict[str, Any], common: dict[str, Any]
) -> dict[str, Any]:
    node.only("tcp", "http")
    http_config: dict[str, Any] = {}
    if node.has("tcp"):
        tcp = node.at("tcp").only(
            "maxConnections",
            "connectTimeout",
            "tcpKeepalive",
            "maxConnectionDuration",
            "idleTimeout",
        )
        if tcp.has("maxConnections") and tcp.at("maxConnections").int() > 0:
            thresholds["max_connections"] = tcp.at("maxConnections").value
        if tcp.has("connectTimeout"):
            cluster["connect_timeout"] = tcp.at("connectTimeout").duration()
        if tcp.has("maxConnectionDuration"):
            common["max_connection_duration"] = tcp.at("maxConnectionDuration").duration()
        if tcp.has("idleTimeout"):
            common["idle_timeout"] = tcp.at("idleTimeout").duration()
        if tcp.get("tcpKeepalive") is not None:
            ka = tcp.at("tcpKeepalive").only("probes", "time", "interval")
            keepalive: dict[str, int] = {}
            if ka.has("probes"):
                keepalive["keepalive_probes"] = ka.at("probes").int()
            if ka.has("time"):
                keepalive["keepalive_time"] = int(ka.at("time").seconds())
            if ka.has("interval"):
                keepalive["keepalive_interval"] = int(ka.at("interval").seconds())
            cluster["upstream_connection_options"] = {"tcp_keepalive": keepalive}
    if node.has("http"):
        http = node.at("http").only(
            "http1MaxPendingRequests",
            "http2MaxRequests",
            "maxRequestsPerConnection",
            "maxRetries",
            "idleTimeout",
            "h2UpgradePolicy",
            "useClientProtocol",
        )
        for istio, envoy in (
            ("http1MaxPendingRequests", "max_pending_requests"),
            ("http2MaxRequests", "max_requests"),
            ("maxRetries", "max_retries"),
        ):
            if http.has(istio) and http.at(istio).int() > 0:
                thresholds[envoy] = http.at(istio).value
        if http.has("maxRequestsPerConnection") and http.at("maxRequestsPerConnection").int() > 0:
            common["max_requests_per_connection"] = http.at("maxRequestsPerConnection").value
        if http.has("idleTimeout"):
            common["idle_timeout"] = http.at("idleTimeout").duration()
        policy = http.at("h2UpgradePolicy").str() if http.has("h2UpgradePolicy") else "DEFAULT"
        if policy not in ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"):
            raise http.at("h2UpgradePolicy").error("must be DEFAULT, DO_NOT_UPGRADE or UPGRADE")
        if http.has("useClientProtocol") and http.at("useClientProtocol").bool():
            http_config = {
                "use_downstream_protocol_config": {
                    "http_protocol_options": {},
                    "http2_protocol_options": {},
                }
            }
        elif policy == "UPGRADE":
            http_config = {"explicit_http_config": {"http2_protocol_options": {}}}
        # DO_NOT_UPGRADE only stops an upgrade (cluster_traffic_policy.go shouldH2Upgrade):
        # the port's own protocol stays, HTTP/2 for an http2 or grpc port.
    return http_config


def load_balancer(node: Node) -> str:
    node.only("simple")
    simple = node.at("simple").str()
    if simple not in LB_POLICIES:
        raise node.at("simple").error(
            f"{simple!r} is not supported by the local mesh (use {', '.join(LB_POLICIES)})"
        )
    return LB_POLICIES[simple]


def outlier_detection(node: Node) -> tuple[float, dict[str, Any]]:
    if node.has("consecutiveErrors"):
        raise node.at("consecutiveErrors").error(
            "is deprecated and ignored by Istio: use consecutive5xxErrors (or "
            "consecutiveGatewayErrors)"
        )
    node.only(
        "consecutive5xxErrors",
        "consecutiveGatewayErrors",
        "interval",
        "baseEjectionTime",
        "maxEjectionPercent",
        "minHealthPercent",
        "splitExternalLocalOriginErrors",
        "consecutiveLocalOriginFailures",
    )
    out: dict[str, Any] = {}
    if node.has("consecutive5xxErrors"):
        n = node.at("consecutive5xxErrors").int()
        out["consecutive_5xx"] = n
        out["enforcing_consecutive_5xx"] = 100 if n > 0 else 0
    if node.has("consecutiveGatewayErrors"):
        n = node.at("consecutiveGatewayErrors").int()
        out["consecutive_gateway_failure"] = n
        out["enforcing_consecutive_gateway_failure"] = 100 if n > 0 else 0
    if node.has("interval"):
        out["interval"] = node.at("interval").duration()
    if node.has("baseEjectionTime"):
        out["base_ejection_time"] = node.at("baseEjectionTime").duration()
    if node.has("maxEjectionPercent") and node.at("maxEjectionPercent").int(0, 100) > 0:
        out["max_ejection_percent"] = node.at("maxEjectionPercent").value
    out["enforcing_success_rate"] = 0
    if (
        node.has("splitExternalLocalOriginErrors")
        and node.at("splitExternalLocalOriginErrors").bool()
    ):
        out["split_external_local_origin_errors"] = True
        if node.has("consecutiveLocalOriginFailures"):
            out["consecutive_local_origin_failure"] = node.at(
                "consecutiveLocalOriginFailures"
            ).int()
            out["enforcing_consecutive_local_origin_failure"] = 100
        out["enforcing_local_origin_success_rate"] = 0
    elif node.has("consecutiveLocalOriginFailures"):
        raise node.at("consecutiveLocalOriginFailures").error(
            "needs splitExternalLocalOriginErrors: true"
        )
    panic = node.at("minHealthPercent").int(0, 100) if node.has("minHealthPercent") else 0
    return float(panic), out
