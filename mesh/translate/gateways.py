"""Gateways -> the ingress listeners, one per server port, as istiod builds a gateway's.

- HTTP servers of one port (across Gateways) share one listener and one route table,
  ``http.<number>``: the routes of the VirtualServices bound to them, a virtual host per
  host (a blackhole 404 when no VirtualService is bound, as in Istio);
- HTTPS servers terminate TLS (mesh/translate/gateway_tls.py): one filter chain per
  server on the port's listener, matched on its SNI hosts, each with its own route table
  ``https.<number>.<port name>.<gateway>.<namespace>`` of that server's hosts only.

A port holds HTTP servers or HTTPS servers, never both (istiod keeps the first and skips
the other); two HTTPS servers of one port may not share a host (``CheckDuplicates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.manifests import Gateway, Manifests
from mesh.translate.fields import Node, spec
from mesh.translate.gateway_tls import (
    ServerTLS,
    server_protocol,
    server_tls,
    sni_hosts,
    tls_inspector,
)
from mesh.translate.hcm import route_config
from mesh.translate.hostnames import (
    bare_host,
    hosts_for_namespace,
    intersect_hosts,
    more_specific_key,
    server_hosts,
)
from mesh.translate.istio_gateways import istio_gateways
from mesh.translate.listeners import (
    connection_manager,
    http_listener,
    virtual_host,
    vs_gateways,
)
from mesh.translate.placement import Placement
from mesh.translate.routes import RouteContext, vs_routes
from mesh.translate.telemetry import CLIENT, GATEWAY_NAMESPACE, tracing_spec
from mesh.translate.tracing import GATEWAY_SERVICE


@dataclass(frozen=True)
class GatewayServer:
    """One server of a Gateway, as read."""

    gateway: Gateway
    node: Node
    number: int
    port_name: str
    hosts: list[str]  # as istiod keeps them (hostnames.server_hosts)
    tls: ServerTLS | None

    @property
    def key(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def terminates(self) -> bool:
        return self.tls is not None and self.tls.context is not None

    @property
    def route_name(self) -> str:
        """model/gateway.go gatewayRDSRouteName."""
        if not self.terminates:
            return f"http.{self.number}"
        gw = self.gateway
        return f"https.{self.number}.{self.port_name}.{gw.name}.{gw.namespace}"


def is_catch_all(route: dict[str, Any]) -> bool:
    """route/route.go IsCatchAllRoute: prefix ``/`` (or regex ``.*``), no header or query match."""
    match = route.get("match", {})
    catch_all = match.get("prefix") == "/" or (match.get("safe_regex", {}).get("regex") == ".*")
    return catch_all and not match.get("headers") and not match.get("query_parameters")


def _sort_vhost_routes(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """route/route.go SortVHostRoutes: catch-all routes last, the others in order."""
    return [r for r in routes if not is_catch_all(r)] + [r for r in routes if is_catch_all(r)]


def _read_server(manifests: Manifests, gw: Gateway, server: Node) -> GatewayServer:
    server.only("port", "hosts", "name", "tls")
    port = server.at("port").only("number", "name", "protocol", "targetPort")
    protocol = server_protocol(port)
    tls = server_tls(manifests, server, protocol)
    name = port.at("name").str() if port.has("name") else ""
    if protocol == "HTTPS" and not name:
        raise port.at("name").error("is required (it names the server's route table)")
    number = port.at("number").int(1, 65535)
    return GatewayServer(gw, server, number, name, server_hosts(server, gw), tls)


def gateway_servers(manifests: Manifests) -> dict[int, list[GatewayServer]]:
    """Port number -> the servers of every Gateway on it, checked as istiod merges them
    (model/gateway.go ``MergeGateways``)."""
    by_port: dict[int, list[GatewayServer]] = {}
    for gw in manifests.gateways:
        root = spec(gw).only("selector", "servers")
        names: set[str] = set()
        for server_node in root.items("servers"):
            server = _read_server(manifests, gw, server_node)
            if server.port_name and server.port_name in names:
                name = server_node.at("port").at("name")
                raise name.error(
                    f"{server.port_name!r} is the name of another server's port: port "
                    f"names in servers must be unique"
                )
            names.add(server.port_name)
            _check_merge(server, by_port.setdefault(server.number, []))
            by_port[server.number].append(server)
    return by_port


def _check_merge(server: GatewayServer, others: list[GatewayServer]) -> None:
    for other in others:
        if other.terminates != server.terminates:
            kinds = ("an HTTPS", "a plain HTTP") if server.terminates else ("an HTTP", "an HTTPS")
            raise server.node.at("port").error(
                f"{kinds[0]} server cannot share port {server.number} with {kinds[1]} "
                f"server of Gateway/{other.gateway.name} (istiod keeps the first, skips "
                f"this one); give it its own port"
            )
        shared = sorted(set(server.hosts) & set(other.hosts))
        if server.terminates and shared:
            raise server.node.at("hosts").error(
                f"{shared[0]!r} is already a host of an HTTPS server of "
                f"Gateway/{other.gateway.name} on port {server.number} (istiod skips "
                f"a server with duplicate hosts)"
            )


def _gateway_route_config(
    manifests: Manifests, name: str, servers: list[GatewayServer], attached: set[str]
) -> dict[str, Any]:
    """Route table NAME as gateway.go buildGatewayHTTPRouteConfig builds it: for each
    server, each VirtualService bound to its Gateway (oldest first; with no creation times,
    as after one ``kubectl apply``, by name then namespace) adds its routes to one virtual
    host per host in both the server's and its own hosts; catch-all routes go last. A
    server's ``httpsRedirect`` makes its hosts' virtual hosts answer 301 to https."""
    number = servers[0].number
    ordered = sorted(manifests.virtual_services, key=lambda v: (v.name, v.namespace))
    vhosts: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, list[str]] = {}  # host -> the (gateway, VS) route lists it holds
    redirect: set[str] = set()  # hosts whose virtual host requires TLS
    built: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for server in servers:
        https_redirect = server.tls is not None and server.tls.https_redirect
        for vs in ordered:
            if server.key not in vs_gateways(vs):
                continue
            vs_hosts = [h.str() for h in spec(vs).items("hosts")]
            shared = intersect_hosts(hosts_for_namespace(server.hosts, vs.namespace), vs_hosts)
            if not shared:
                continue
            key = (server.key, f"{vs.namespace}/{vs.name}")
            if key not in built:
                source = gateway_workload(manifests, server.gateway)
                ctx = RouteContext(manifests, (server.key,), number, source=source)
                built[key] = vs_routes(vs, ctx)
            attached.add(f"{vs.namespace}/{vs.name}")
            for host in (h.lower() for h in shared):
                vhosts.setdefault(host, []).extend(built[key])
                sources.setdefault(host, []).append("|".join(key))
                if https_redirect:
                    redirect.add(host)
        if https_redirect:  # a host no VirtualService routes still redirects
            for host in (bare_host(h).lower() for h in server.hosts):
                vhosts.setdefault(host, [])
                sources.setdefault(host, [])
                redirect.add(host)
    if not vhosts:  # Istio's 404 NR for every request
        return route_config(name, [virtual_host(f"blackhole:{number}", ["*"], [])])
    # collapseDuplicateRoutes: hosts holding the same route lists (and the same TLS
    # requirement, vhostMergeable) share one virtual host, named after the most specific.
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for host in sorted(vhosts, key=more_specific_key):
        key = (*sources[host], host in redirect)
        same = merged.get(key)
        if same is not None:
            same["domains"].append(host)
            continue
        vhost = virtual_host(f"{host}:{number}", [host], _sort_vhost_routes(vhosts[host]))
        if host in redirect:
            vhost["require_tls"] = "ALL"
        merged[key] = vhost
    return route_config(name, sorted(merged.values(), key=lambda v: v["name"]))


def gateway_workload(manifests: Manifests, gw: Gateway) -> tuple[dict[str, str], str]:
    """The labels and namespace of the pods GW's selector picks (what a bound
    VirtualService's match.sourceLabels / sourceNamespace select): a Deployment of the set
    it selects, else Istio's own gateway whose labels include it, else the selector itself
    in the Gateway's namespace."""
    raw = gw.spec.get("selector")
    selector = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    for d in manifests.deployments:
        if selector and all(d.template_labels.get(k) == v for k, v in selector.items()):
            return d.template_labels, d.namespace
    for istio in istio_gateways(selector):
        return istio.labels, istio.namespace
    return selector, gw.namespace


def gateway_listeners(manifests: Manifests, placement: Placement) -> list[dict[str, Any]]:
    attached: set[str] = set()
    listeners = []
    traced_as = (
        GATEWAY_SERVICE,
        placement.traces,
        tracing_spec(manifests, GATEWAY_NAMESPACE, CLIENT),
    )
    for number, servers in gateway_servers(manifests).items():
        name, port = f"gateway_{number}", placement.gateway_port(number)
        groups = [[s] for s in servers] if servers[0].terminates else [servers]
        chains = []
        for group in groups:
            table = _gateway_route_config(manifests, group[0].route_name, group, attached)
            chain: dict[str, Any] = {"filters": [connection_manager(name, table, True, traced_as)]}
            tls = group[0].tls
            if tls is not None and tls.context is not None:
                names = sni_hosts(group[0].hosts)
                if names:
                    chain["filter_chain_match"] = {"server_names": names}
                chain["transport_socket"] = tls.context
            chains.append(chain)
        listener = http_listener(name, placement.listen_address, port, chains[0]["filters"][0])
        listener["filter_chains"] = chains
        if servers[0].terminates:
            listener["listener_filters"] = [tls_inspector()]
        listeners.append(listener)
    for vs in manifests.virtual_services:
        if f"{vs.namespace}/{vs.name}" not in attached and set(vs_gateways(vs)) - {"mesh"}:
            raise (
                spec(vs).at("hosts").error("match no host of the bound Gateway servers (IST0132)")
            )
    return listeners


@dataclass(frozen=True)
class TlsServer:
    """What a user needs to reach an HTTPS server: its port, SNI hosts and Secret."""

    number: int
    hosts: list[str]
    credential: str


def tls_servers(manifests: Manifests) -> list[TlsServer]:
    """The HTTPS servers of the (already translated) Gateways, in order."""
    out = []
    for gw in manifests.gateways:
        for server in gw.spec.get("servers") or []:
            port = server.get("port") or {}
            if str(port.get("protocol", "")).upper() != "HTTPS":
                continue
            hosts = [bare_host(str(h)) for h in server.get("hosts") or []]
            credential = str((server.get("tls") or {}).get("credentialName", ""))
            out.append(TlsServer(int(port["number"]), hosts, credential))
    return out
