"""Gateways and mesh Services -> Envoy listeners with their route tables.

- one ingress listener per Gateway server port (merged across Gateways), with the routes
  of the VirtualServices bound to it, a virtual host per host (a blackhole 404 when no
  VirtualService is bound, as in Istio);
- one outbound listener per Service port, playing the caller's sidecar: the Service's
  mesh VirtualService (or Istio's default route) over the Service's clusters.
"""

from __future__ import annotations

from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Gateway, Manifests, Service, VirtualService
from mesh.translate.clusters import resolve_host
from mesh.translate.cors import cors_filter
from mesh.translate.fault import FAULT_FILTER, HTTP_FAULT
from mesh.translate.fields import Node, spec
from mesh.translate.hcm import HCM, istio_hcm, router_filter
from mesh.translate.hcm import route_config as _route_config
from mesh.translate.placement import Placement
from mesh.translate.routes import RouteContext, default_route, vs_routes
from mesh.translate.tcp import is_tcp, outbound_tcp_listener
from mesh.translate.telemetry import CLIENT, GATEWAY_NAMESPACE, tracing_spec
from mesh.translate.tracing import GATEWAY_SERVICE, add_tracing, outbound_service


def _hcm(
    stat_prefix: str, route_config: dict[str, Any], edge: bool, traced_as: tuple[Any, ...]
) -> dict[str, Any]:
    """TRACED_AS: (span service name, placement.traces, the Telemetry's TracingSpec or None);
    see mesh/translate/tracing.py and mesh/translate/telemetry.py."""
    # istiod's order: fault, then CORS (their per-route configs need them), the router last
    filters = [
        {"name": FAULT_FILTER, "typed_config": {"@type": HTTP_FAULT}},
        cors_filter(),
        router_filter(),
    ]
    config = istio_hcm(stat_prefix, route_config, filters, gateway=edge)
    add_tracing(config, *traced_as)
    if edge:
        # Kept on purpose, unlike istiod: a client's x-request-id survives the edge, so one
        # id follows a request through both hops (the propagation demo, access logs and
        # traces are looked up by it). A cluster's ingress gateway replaces it (Envoy
        # treats every client as external there).
        config["preserve_external_request_id"] = True
    return {"name": HCM, "typed_config": config}


def _listener(name: str, address: str, port: int, hcm: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        # as istiod sets on gateway and sidecar-outbound listeners: Envoy's spans are CLIENT
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [hcm]}],
    }


def _vhost(name: str, domains: list[str], routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "domains": domains,
        "routes": routes,
        "include_request_attempt_count": True,
    }


# --------------------------------------------------------------------------- VS binding


def _vs_gateways(vs: VirtualService) -> list[str]:
    """ "ns/name" of each gateway the VS binds to; "mesh" when none are listed."""
    root = spec(vs)
    entries = root.items("gateways")
    if not entries:
        return ["mesh"]
    out = []
    for entry in entries:
        name = entry.str()
        out.append(name if name == "mesh" or "/" in name else f"{vs.namespace}/{name}")
    return out


def check_virtual_services(manifests: Manifests) -> None:
    gateways = {f"{g.namespace}/{g.name}" for g in manifests.gateways}
    for vs in manifests.virtual_services:
        root = spec(vs).only("hosts", "gateways", "http", "exportTo")
        for entry in root.items("exportTo"):
            if entry.str() not in ("*", ".", vs.namespace):
                raise entry.error("is not supported by the local mesh")
        if not root.items("hosts"):
            raise root.at("hosts").error("is required")
        for i, name in enumerate(_vs_gateways(vs)):
            if name != "mesh" and name not in gateways:
                raise root.at("gateways").at(i).error(f"names no Gateway of {manifests.root}")
        if not root.items("http"):
            raise root.at("http").error("is required (tcp and tls routes are not supported)")


def mesh_virtual_service(manifests: Manifests, service: Service) -> VirtualService | None:
    """The mesh-bound VirtualService whose hosts name SERVICE (at most one, as IST0109)."""
    found: list[VirtualService] = []
    for vs in manifests.virtual_services:
        if "mesh" not in _vs_gateways(vs):
            continue
        for host in spec(vs).items("hosts"):
            if resolve_host(manifests, host.str(), vs.namespace) is service:
                found.append(vs)
                break
    if len(found) > 1:
        raise TranslationError(
            f"{found[1].where()}: spec.hosts: Service/{service.name} is already routed by "
            f"VirtualService/{found[0].name} ({found[0].source}); merge them (IST0109)"
        )
    return found[0] if found else None


def _check_mesh_hosts(manifests: Manifests) -> None:
    for vs in manifests.virtual_services:
        if "mesh" not in _vs_gateways(vs):
            continue
        for host in spec(vs).items("hosts"):
            if resolve_host(manifests, host.str(), vs.namespace) is None:
                raise host.error(
                    f"{host.value!r} matches no Service of {manifests.root}; a mesh "
                    f"VirtualService routes calls to a Service"
                )


# --------------------------------------------------------------------------- listeners


def outbound_listeners(manifests: Manifests, placement: Placement) -> list[dict[str, Any]]:
    _check_mesh_hosts(manifests)
    listeners = []
    for service in manifests.services:
        vs = mesh_virtual_service(manifests, service)
        for port in service.ports:
            if is_tcp(port):  # bytes, not requests: tcp_proxy (mesh/translate/tcp.py)
                listeners.append(outbound_tcp_listener(manifests, placement, service, port))
                continue
            ctx = RouteContext(manifests, ("mesh",), port.port, service)
            routes = vs_routes(vs, ctx) if vs else [default_route(service, port.port)]
            name = f"{service.fqdn}:{port.port}"
            route_config = _route_config(name, [_vhost(name, ["*"], routes)])
            local_port = placement.service_ports[(service.name, port.port)]
            traced_as = (
                outbound_service(service.name),
                placement.traces,
                tracing_spec(manifests, service.namespace, CLIENT),
            )
            hcm = _hcm(f"outbound_{service.name}_{port.port}", route_config, False, traced_as)
            listeners.append(
                _listener(f"outbound_{name}", placement.listen_address, local_port, hcm)
            )
    return listeners


def _server_hosts(server: Node, gw: Gateway) -> list[str]:
    """The server's hosts as istiod keeps them (model/gateway.go sanitizeServerHostNamespace):
    ``./h`` is ``<gateway ns>/h``, ``*/h`` is ``h``, ``ns/h`` stays (it binds VirtualServices
    of namespace ns only)."""
    hosts = []
    for entry in server.items("hosts"):
        ns, slash, name = entry.str().rpartition("/")
        if slash and (not ns or not name or "/" in ns):
            raise entry.error("must be HOST or NAMESPACE/HOST")
        if ns == "*" and name == "*":
            return ["*"]
        hosts.append(
            f"{gw.namespace}/{name}" if ns == "." else (name if ns == "*" else entry.str())
        )
    if not hosts:
        raise server.at("hosts").error("is required")
    return hosts


def _hosts_for_namespace(hosts: list[str], namespace: str) -> list[str]:
    """host.NamesForNamespace: the server hosts a VirtualService of NAMESPACE may bind."""
    out = []
    for host in hosts:
        ns, slash, name = host.partition("/")
        if not slash:
            out.append(host)
        elif ns in (namespace, "*"):
            out.append(name)
    return out


def _subset_of(a: str, b: str) -> bool:
    """host.Name.SubsetOf: every name A matches is matched by B."""
    if a.startswith("*"):
        return b.startswith("*") and len(a) >= len(b) and a[1:].endswith(b[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def intersect_hosts(server_hosts: list[str], vs_hosts: list[str]) -> list[str]:
    """host.Names.Intersection: the names both lists cover, the narrower of each pair
    (server ``*.example.com`` and VirtualService ``a.example.com`` give ``a.example.com``)."""
    out: list[str] = []
    for s in server_hosts:
        for v in vs_hosts:
            narrower = s if _subset_of(s, v) else (v if _subset_of(v, s) else None)
            if narrower is not None and narrower not in out:
                out.append(narrower)
    return out


def _more_specific_key(host: str) -> tuple[bool, int, str]:
    """host.MoreSpecific: longest first, alphabetically, wildcards last."""
    return (host.startswith("*"), -len(host), host)


def is_catch_all(route: dict[str, Any]) -> bool:
    """route/route.go IsCatchAllRoute: prefix ``/`` (or regex ``.*``), no header or query match."""
    match = route.get("match", {})
    catch_all = match.get("prefix") == "/" or (match.get("safe_regex", {}).get("regex") == ".*")
    return catch_all and not match.get("headers") and not match.get("query_parameters")


def _sort_vhost_routes(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """route/route.go SortVHostRoutes: catch-all routes last, the others in order."""
    return [r for r in routes if not is_catch_all(r)] + [r for r in routes if is_catch_all(r)]


def _gateway_servers(manifests: Manifests) -> dict[int, list[tuple[Gateway, list[str]]]]:
    """Port number -> [(gateway, server hosts)] over every Gateway's servers."""
    by_port: dict[int, list[tuple[Gateway, list[str]]]] = {}
    for gw in manifests.gateways:
        root = spec(gw).only("selector", "servers")
        for server in root.items("servers"):
            server.only("port", "hosts", "name")
            port = server.at("port").only("number", "name", "protocol", "targetPort")
            number = port.at("number").int(1, 65535)
            protocol = port.at("protocol").str().upper() if port.has("protocol") else "HTTP"
            if protocol != "HTTP":
                raise port.at("protocol").error(
                    f"{protocol} is not supported by the local mesh (HTTP only)"
                )
            by_port.setdefault(number, []).append((gw, _server_hosts(server, gw)))
    return by_port


def _gateway_route_config(
    manifests: Manifests, number: int, servers: list[tuple[Gateway, list[str]]], attached: set[str]
) -> dict[str, Any]:
    """Route table ``http.<number>`` as gateway.go buildGatewayHTTPRouteConfig builds it: for
    each server, each VirtualService bound to its Gateway (oldest first; with no creation
    times, as after one ``kubectl apply``, by name then namespace) adds its routes to one
    virtual host per host in both the server's and its own hosts; catch-all routes go last."""
    ordered = sorted(manifests.virtual_services, key=lambda v: (v.name, v.namespace))
    vhosts: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, list[str]] = {}  # host -> the (gateway, VS) route lists it holds
    built: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for gw, hosts in servers:
        gw_key = f"{gw.namespace}/{gw.name}"
        for vs in ordered:
            if gw_key not in _vs_gateways(vs):
                continue
            vs_hosts = [h.str() for h in spec(vs).items("hosts")]
            shared = intersect_hosts(_hosts_for_namespace(hosts, vs.namespace), vs_hosts)
            if not shared:
                continue
            key = (gw_key, f"{vs.namespace}/{vs.name}")
            if key not in built:
                built[key] = vs_routes(vs, RouteContext(manifests, (gw_key,), number))
            attached.add(f"{vs.namespace}/{vs.name}")
            for host in (h.lower() for h in shared):
                vhosts.setdefault(host, []).extend(built[key])
                sources.setdefault(host, []).append("|".join(key))
    if not vhosts:  # Istio's 404 NR for every request
        return _route_config(f"http.{number}", [_vhost(f"blackhole:{number}", ["*"], [])])
    # collapseDuplicateRoutes: hosts holding the same route lists share one virtual host,
    # named after the most specific of them.
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for host in sorted(vhosts, key=_more_specific_key):
        same = merged.get(tuple(sources[host]))
        if same is not None:
            same["domains"].append(host)
            continue
        routes = _sort_vhost_routes(vhosts[host])
        merged[tuple(sources[host])] = _vhost(f"{host}:{number}", [host], routes)
    hosts_out = sorted(merged.values(), key=lambda v: v["name"])
    return _route_config(f"http.{number}", hosts_out)


def gateway_listeners(manifests: Manifests, placement: Placement) -> list[dict[str, Any]]:
    attached: set[str] = set()
    listeners = []
    for number, servers in _gateway_servers(manifests).items():
        route_config = _gateway_route_config(manifests, number, servers, attached)
        traced_as = (
            GATEWAY_SERVICE,
            placement.traces,
            tracing_spec(manifests, GATEWAY_NAMESPACE, CLIENT),
        )
        hcm = _hcm(f"gateway_{number}", route_config, True, traced_as)
        port = placement.gateway_port(number)
        listeners.append(_listener(f"gateway_{number}", placement.listen_address, port, hcm))
    for vs in manifests.virtual_services:
        if f"{vs.namespace}/{vs.name}" not in attached and set(_vs_gateways(vs)) - {"mesh"}:
            raise (
                spec(vs).at("hosts").error("match no host of the bound Gateway servers (IST0132)")
            )
    return listeners
