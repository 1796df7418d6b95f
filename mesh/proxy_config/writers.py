"""The rows of istioctl's proxy-config tables, from raw Envoy resources.

One function per table, each following its istioctl file (istioctl/pkg/writer/envoy/):
configdump/cluster.go PrintClusterSummary, configdump/route.go PrintRouteSummary
(verbose, istioctl's default) and clusters/clusters.go PrintEndpointsSummary; the
listeners are in listeners.py. Each returns the rows (header first) and the padding its
tabwriter uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.translate.metadata import ISTIO_KEY, render_config

Row = list[str]
Table = tuple[list[Row], int]  # rows (header first), tabwriter padding

HCM = "envoy.filters.network.http_connection_manager"  # wellknown.HTTPConnectionManager
PASSTHROUGH = "PassthroughCluster"  # util.PassthroughCluster


def parse_subset_key(name: str) -> tuple[str, str, str, int]:
    """pilot/pkg/model ParseSubsetKey: `outbound|5000|v1|backend-service.default.svc...`
    -> (direction, subset, hostname, port); what a name lacks stays empty (port 0)."""
    sep = "_." if name.startswith(("outbound_.", "inbound_.")) else "|"
    parts = name.split(sep, 3)
    direction = parts[0] if len(parts) > 1 else ""
    port = 0
    if len(parts) > 2:
        try:
            port = int(parts[1])
        except ValueError:
            port = 0
    subset = parts[2] if len(parts) > 3 else ""
    host = parts[3] if len(parts) > 3 and sep not in parts[3] else ""
    return direction, subset, host, port


def _safely_parse(name: str) -> tuple[str, str, str, int]:
    """cluster.go safelyParseSubsetKey: a name of fewer than four parts is its own host."""
    if len(name.split("|")) > 3:
        return parse_subset_key(name)
    return "", "", name, 0


def _sort_key(name: str) -> tuple[str, str, int, str]:
    direction, subset, host, port = _safely_parse(name)
    return host, subset, port, direction


def describe_management(metadata: dict[str, Any] | None) -> str:
    """route.go describeManagement: the Istio config that wrote a cluster or a route,
    from its `istio` filter metadata; empty when there is none."""
    istio = ((metadata or {}).get("filter_metadata") or {}).get(ISTIO_KEY)
    if not isinstance(istio, dict) or "config" not in istio:
        return ""
    return render_config(str(istio["config"]))


def describe_match(match: dict[str, Any] | None) -> str:
    """listener.go describeMatch: prefix `p*`, path, regex (headers are not shown)."""
    match = match or {}
    conds = []
    if match.get("prefix"):
        conds.append(f"{match['prefix']}*")
    if match.get("path_separated_prefix"):
        conds.append(f"PathPrefix:{match['path_separated_prefix']}")
    if match.get("path"):
        conds.append(str(match["path"]))
    if match.get("safe_regex"):
        conds.append(f"regex {match['safe_regex'].get('regex', '')}")
    return " ".join(conds)


# -- clusters (configdump/cluster.go)


@dataclass
class ClusterFilter:
    fqdn: str = ""
    port: int = 0
    subset: str = ""
    direction: str = ""

    def verify(self, name: str) -> bool:
        """ClusterFilter.Verify: substrings of the cluster's name."""
        if self.fqdn and self.fqdn not in name:
            return False
        if self.direction and self.direction not in name:
            return False
        if self.subset and self.subset not in name:
            return False
        return not self.port or f"|{self.port}|" in name


def sorted_clusters(clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """retrieveSortedClusterSlice: by host, subset, port, then direction."""
    return sorted(clusters, key=lambda c: _sort_key(str(c.get("name", ""))))


def clusters_table(
    clusters: list[dict[str, Any]], flt: ClusterFilter, typed: bool = False
) -> Table:
    """TYPED: `proxy-config all`'s form, a NAME column of `cluster/NAME` first (where the
    name does not parse, istioctl prints `cluster/NAME` in both of the first columns)."""
    header = ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]
    rows: list[Row] = [["NAME", *header] if typed else header]
    for c in sorted_clusters(clusters):
        name = str(c.get("name", ""))
        if not flt.verify(name):
            continue
        kind = str(c.get("type") or "STATIC")  # the enum's zero value
        rule = describe_management(c.get("metadata"))
        first = [f"cluster/{name}"] if typed else []
        if len(name.split("|")) > 3:
            direction, subset, host, port = parse_subset_key(name)
            rows.append([*first, host, str(port), subset or "-", direction, kind, rule])
        else:
            rows.append([*first, first[0] if typed else name, "-", "-", "-", kind, rule])
    return rows, 5


# -- routes (configdump/route.go)


def _unexpand(domains: list[str]) -> list[str]:
    """unexpandDomains: drop `x.svc.cluster.local` and `x.svc` when `x` is listed."""
    unique = set(domains)
    drop = {
        h
        for h in domains
        for stripped in (h.removesuffix(".svc.cluster.local"), h.removesuffix(".svc"))
        if stripped != h and stripped in unique
    }
    return [h for h in domains if h not in drop]


def describe_route_domains(domains: list[str]) -> str:
    """describeRouteDomains: the one domain, or the shortest port-less ones (two, `+ N
    more...`)."""
    if len(domains) <= 1:
        return domains[0] if domains else ""
    without_port = [d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))]
    without_port = _unexpand(without_port)
    if len(without_port) > 2:
        return f"{', '.join(without_port[:2])} + {len(without_port) - 2} more..."
    return ", ".join(without_port)


def sorted_routes(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """retrieveSortedRouteSlice orders numeric names (a sidecar's `5000`) by number and
    leaves the others (`http.80`, `backend-service...:5000`) as the dump lists them."""
    numeric = sorted(
        (r for r in routes if str(r.get("name", "")).isdigit()), key=lambda r: int(r["name"])
    )
    it = iter(numeric)
    return [next(it) if str(r.get("name", "")).isdigit() else r for r in routes]


def routes_table(routes: list[dict[str, Any]], name: str = "", typed: bool = False) -> Table:
    """TYPED: `proxy-config all`'s form, each NAME as `route/NAME`."""
    rows: list[Row] = [["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]]
    for config in sorted_routes(routes):
        if name and config.get("name") != name:
            continue
        shown = f"route/{config.get('name', '')}" if typed else str(config.get("name", ""))
        for vh in config.get("virtual_hosts") or []:
            domains = describe_route_domains(list(vh.get("domains") or []))
            head = [shown, str(vh.get("name", "")), domains]
            for r in vh.get("routes") or []:
                if (r.get("route") or {}).get("cluster") != PASSTHROUGH:
                    rows.append(
                        [
                            *head,
                            describe_match(r.get("match")),
                            describe_management(r.get("metadata")),
                        ]
                    )
            if not vh.get("routes"):
                rows.append([*head, "/*", "404"])
    return rows, 5


# -- endpoints (clusters/clusters.go, over /clusters?format=json)


def _host_address(host: dict[str, Any]) -> tuple[str, int]:
    address = host.get("address") or {}
    if "socket_address" in address:
        sock = address["socket_address"]
        return str(sock.get("address", "")), int(sock.get("port_value", 0))
    if "pipe" in address:
        return f"unix://{address['pipe'].get('path', '')}", 0
    internal = address.get("envoy_internal_address")
    if internal and internal.get("server_listener_name"):
        return f"envoy://{internal['server_listener_name']}/{internal.get('endpoint_id', '')}", 0
    return "unknown", 0


def host_status(host: dict[str, Any]) -> str:
    """HealthStatus_name of eds_health_status (UNKNOWN, the zero value, when unset)."""
    return str((host.get("health_status") or {}).get("eds_health_status") or "UNKNOWN")


@dataclass
class EndpointFilter:
    address: str = ""
    port: int = 0
    cluster: str = ""
    status: str = ""

    def verify(self, host: dict[str, Any], cluster: str) -> bool:
        address, port = _host_address(host)
        if self.address and address.lower() != self.address.lower():
            return False
        if self.port and port != self.port:
            return False
        if self.cluster and cluster.lower() != self.cluster.lower():
            return False
        return not self.status or host_status(host).lower() == self.status.lower()


def selected_statuses(statuses: list[dict[str, Any]], flt: EndpointFilter) -> list[dict[str, Any]]:
    """PrintEndpoints (-o json|yaml): every cluster with a host the filter selects."""
    return [
        s
        for s in statuses
        if any(flt.verify(h, str(s.get("name", ""))) for h in s.get("host_statuses") or [])
    ]


def endpoints_table(statuses: list[dict[str, Any]], flt: EndpointFilter) -> Table:
    found = []
    for s in statuses:
        cluster = str(s.get("name", ""))
        for host in s.get("host_statuses") or []:
            if flt.verify(host, cluster):
                address, port = _host_address(host)
                failed = bool((host.get("health_status") or {}).get("failed_outlier_check"))
                found.append((address, port, cluster, host_status(host), failed))
    found.sort(key=lambda e: (e[0], e[1], e[2]))
    rows: list[Row] = [["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"]]
    for address, port, cluster, status, failed in found:
        endpoint = f"{address}:{port}" if port else address
        rows.append([endpoint, status, "FAILED" if failed else "OK", cluster])
    return rows, 5
