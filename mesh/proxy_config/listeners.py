"""The rows of `istioctl proxy-config listeners` (verbose, its default), as
istioctl/pkg/writer/envoy/configdump/listener.go PrintListenerSummary builds them: one
row per filter chain, with its match and where it sends traffic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mesh.proxy_config.writers import HCM, Row, Table, describe_match

TCP_PROXY = "envoy.filters.network.tcp_proxy"  # wellknown.TCPProxy
BLACK_HOLE = "BlackHoleCluster"  # util.BlackHoleCluster


def _chains(listener: dict[str, Any]) -> list[dict[str, Any]]:
    chains = list(listener.get("filter_chains") or [])
    if listener.get("default_filter_chain"):
        chains.append(listener["default_filter_chain"])
    return chains


def _not_black_hole(f: dict[str, Any]) -> bool:
    return BLACK_HOLE not in json.dumps(f.get("typed_config") or {})


def listener_type(listener: dict[str, Any]) -> str:
    """retrieveListenerType: HTTP, TCP, HTTP+TCP or UNKNOWN by the chains' filters."""
    filters = [f for chain in _chains(listener) for f in chain.get("filters") or []]
    n_http = sum(1 for f in filters if f.get("name") == HCM)
    n_tcp = sum(1 for f in filters if f.get("name") == TCP_PROXY and _not_black_hole(f))
    if n_http:
        return "HTTP" if not n_tcp else "HTTP+TCP"
    return "TCP" if n_tcp else "UNKNOWN"


def listener_address(listener: dict[str, Any]) -> str:
    address = listener.get("address") or {}
    if "socket_address" in address:
        return str(address["socket_address"].get("address", ""))
    if "pipe" in address:
        return str(address["pipe"].get("path", ""))
    return ""


def listener_addresses(listener: dict[str, Any]) -> list[str]:
    """The address, then additional_addresses (retrieveListenerAdditionalAddresses)."""
    extra = [
        str(((a.get("address") or {}).get("socket_address") or {}).get("address", ""))
        for a in listener.get("additional_addresses") or []
    ]
    return [listener_address(listener), *extra]


def listener_port(listener: dict[str, Any]) -> int:
    return int(((listener.get("address") or {}).get("socket_address") or {}).get("port_value", 0))


@dataclass
class ListenerFilter:
    address: str = ""
    port: int = 0
    type: str = ""

    def verify(self, listener: dict[str, Any]) -> bool:
        if self.address and not any(
            a.lower() == self.address.lower() for a in listener_addresses(listener)
        ):
            return False
        if self.port and listener_port(listener) != self.port:
            return False
        return not self.type or listener_type(listener).lower() == self.type.lower()


# listener.go protDescrs: well-known ALPN lists and their names
PROTOCOL_NAMES = {
    "App: HTTP TLS": [
        "http/1.0",
        "http/1.1",
        "h2c",
        "istio-http/1.0",
        "istio-http/1.1",
        "istio-h2",
    ],
    "App: Istio HTTP Plain": ["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"],
    "App: TCP TLS": ["istio-peer-exchange", "istio"],
    "App: HTTP": ["http/1.0", "http/1.1", "h2c"],
}


def chain_match(match: dict[str, Any] | None) -> str:
    """getMatches: SNI, transport, ALPN and destination of a filter_chain_match, or ALL."""
    match = match or {}
    descrs = []
    if match.get("server_names"):
        descrs.append(f"SNI: {','.join(match['server_names'])}")
    if match.get("transport_protocol"):
        descrs.append(f"Trans: {match['transport_protocol']}")
    protocols = match.get("application_protocols") or []
    if protocols:
        named = [k for k, v in PROTOCOL_NAMES.items() if v == protocols]
        descrs.append(named[0] if named else f"App: {','.join(protocols)}")
    port = f":{match['destination_port']}" if match.get("destination_port") is not None else ""
    ranges = match.get("prefix_ranges") or []
    if ranges:
        pf = ",".join(f"{r.get('address_prefix', '')}/{r.get('prefix_len', 0)}" for r in ranges)
        descrs.append(f"Addr: {pf}{port}")
    elif port:
        descrs.append(f"Addr: *{port}")
    return "; ".join(descrs or ["ALL"])


def _cluster_label(cluster: str) -> str:
    return cluster if "Cluster" in cluster else f"Cluster: {cluster}"


def _match_all_cluster(config: dict[str, Any]) -> str:
    """getMatchAllCluster: one `*` vhost with one `/` route to a cluster: that cluster."""
    vhosts = config.get("virtual_hosts") or []
    if len(vhosts) != 1 or vhosts[0].get("domains") != ["*"]:
        return ""
    routes = vhosts[0].get("routes") or []
    if len(routes) != 1 or (routes[0].get("match") or {}).get("prefix") != "/":
        return ""
    cluster = (routes[0].get("route") or {}).get("cluster")
    return _cluster_label(cluster) if cluster else ""


def _describe_route_config(config: dict[str, Any]) -> str:
    cluster = _match_all_cluster(config)
    if cluster:
        return cluster
    vhosts = []
    for vh in config.get("virtual_hosts") or []:
        domains = vh.get("domains") or []
        routes = ", ".join(describe_match(r.get("match")) for r in vh.get("routes") or [])
        shown = "" if domains == ["*"] else "/".join(domains)
        vhosts.append(f"{shown} {routes}" if shown else routes)
    return f"Inline Route: {'; '.join(vhosts)}"


def chain_destination(filters: list[dict[str, Any]]) -> str:
    """getFilterType: where a chain sends its traffic (its route table or cluster)."""
    for f in filters:
        config = f.get("typed_config") or {}
        if f.get("name") == HCM:
            if config.get("route_config") is not None:
                return _describe_route_config(config["route_config"])
            name = (config.get("rds") or {}).get("route_config_name")
            return f"Route: {name}" if name else "HTTP"
        if f.get("name") == TCP_PROXY and _not_black_hole(f):
            return _cluster_label(str(config.get("cluster", "")))
    return "Non-HTTP/Non-TCP"


def listeners_table(
    listeners: list[dict[str, Any]], flt: ListenerFilter, typed: bool = False
) -> Table:
    """TYPED: `proxy-config all`'s form, a NAME column of `listener/NAME` first."""
    found = [ln for ln in listeners if flt.verify(ln)]
    found.sort(key=lambda ln: (listener_port(ln), listener_address(ln), listener_type(ln)))
    header = ["ADDRESSES", "PORT", "MATCH", "DESTINATION"]
    rows: list[Row] = [["NAME", *header] if typed else header]
    for ln in found:
        first = [f"listener/{ln.get('name', '')}"] if typed else []
        chains = [
            (chain_match(c.get("filter_chain_match")), chain_destination(c.get("filters") or []))
            for c in _chains(ln)
        ]
        chains.sort(key=lambda c: c[1], reverse=True)  # by destination, descending
        for match, destination in chains:
            addresses = ",".join(listener_addresses(ln))
            rows.append([*first, addresses, str(listener_port(ln)), match, destination])
    return rows, 1
