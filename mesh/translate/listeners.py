"""Gateways and mesh Services -> Envoy listeners with their route tables.

- one ingress listener per Gateway server port (merged across Gateways), with the routes
  of the VirtualServices bound to it, a virtual host per host (a blackhole 404 when no
  VirtualService is bound, as in Istio);
- one outbound listener per Service port, playing the caller's sidecar: the Service's
  mesh VirtualService (or Istio's default route) over the Service's clusters.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Gateway, Manifests, Service, VirtualService
from mesh.translate.clusters import resolve_host
from mesh.translate.fields import Node, spec
from mesh.translate.placement import Placement
from mesh.translate.routes import FAULT_FILTER, HTTP_FAULT, RouteContext, default_route, vs_routes
from mesh.translate.tracing import GATEWAY_SERVICE, add_tracing, outbound_service

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
UUID_REQUEST_ID = "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"
STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
# Istio's default TEXT access-log format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat)
ISTIO_TEXT_LOG_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)


def access_log() -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": STDOUT_LOG,
                "log_format": {"text_format_source": {"inline_string": ISTIO_TEXT_LOG_FORMAT}},
            },
        }
    ]


def _hcm(
    stat_prefix: str, route_config: dict[str, Any], edge: bool, traced_as: tuple[str, Any]
) -> dict[str, Any]:
    """TRACED_AS: (span service name, placement.traces); see mesh/translate/tracing.py."""
    config: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "generate_request_id": True,
        "request_id_extension": {"typed_config": {"@type": UUID_REQUEST_ID}},
        # The edge is where clients connect (Istio: use_remote_address on gateways).
        "use_remote_address": edge,
        "access_log": access_log(),
        "route_config": route_config,
        "http_filters": [
            {"name": FAULT_FILTER, "typed_config": {"@type": HTTP_FAULT}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
        ],
    }
    add_tracing(config, *traced_as)
    if edge:
        # A client's x-request-id survives the edge, so one id follows a request
        # through both hops (the propagation demo depends on it).
        config["preserve_external_request_id"] = True
        config["strip_any_host_port"] = True
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


def _route_config(name: str, vhosts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "virtual_hosts": vhosts, "validate_clusters": False}


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
            ctx = RouteContext(manifests, ("mesh",), port.port, service)
            routes = vs_routes(vs, ctx) if vs else [default_route(service, port.port)]
            name = f"{service.fqdn}:{port.port}"
            route_config = _route_config(name, [_vhost(name, ["*"], routes)])
            local_port = placement.service_ports[(service.name, port.port)]
            traced_as = (outbound_service(service.name), placement.traces)
            hcm = _hcm(f"outbound_{service.name}_{port.port}", route_config, False, traced_as)
            listeners.append(
                _listener(f"outbound_{name}", placement.listen_address, local_port, hcm)
            )
    return listeners


def _server_hosts(server: Node, gw: Gateway) -> list[str]:
    hosts = []
    for entry in server.items("hosts"):
        host = entry.str()
        if "/" in host:
            ns, host = host.split("/", 1)
            if ns not in ("*", ".", gw.namespace):
                raise entry.error("names another namespace, not supported by the local mesh")
        hosts.append(host)
    if not hosts:
        raise server.at("hosts").error("is required")
    return hosts


def _host_matches(a: str, b: str) -> bool:
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def gateway_listeners(manifests: Manifests, placement: Placement) -> list[dict[str, Any]]:
    # port number -> [(gateway key, server hosts)]
    by_port: dict[int, list[tuple[str, list[str]]]] = {}
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
            key = f"{gw.namespace}/{gw.name}"
            by_port.setdefault(number, []).append((key, _server_hosts(server, gw)))
    bound = {vs.name: _vs_gateways(vs) for vs in manifests.virtual_services}
    attached: set[str] = set()
    listeners = []
    for number, servers in by_port.items():
        keys = tuple(dict.fromkeys(k for k, _ in servers))
        vhosts: dict[str, list[dict[str, Any]]] = {}
        for vs in manifests.virtual_services:
            if not set(bound[vs.name]) & set(keys):
                continue
            ctx = RouteContext(manifests, keys, number)
            routes = None
            for host in spec(vs).items("hosts"):
                h = host.str()
                gw_hosts = [s for k, hs in servers if k in bound[vs.name] for s in hs]
                if not any(_host_matches(h, s) for s in gw_hosts):
                    continue
                routes = routes if routes is not None else vs_routes(vs, ctx)
                vhosts.setdefault(h, []).extend(routes)
                attached.add(vs.name)
        name = f"http.{number}"
        if vhosts:
            hosts = [_vhost(f"{h}:{number}", [h], r) for h, r in vhosts.items()]
        else:
            hosts = [_vhost(f"blackhole:{number}", ["*"], [])]
        traced_as = (GATEWAY_SERVICE, placement.traces)
        hcm = _hcm(f"gateway_{number}", _route_config(name, hosts), True, traced_as)
        port = placement.gateway_port(number)
        listeners.append(_listener(f"gateway_{number}", placement.listen_address, port, hcm))
    for vs in manifests.virtual_services:
        if vs.name not in attached and set(bound[vs.name]) - {"mesh"}:
            raise (
                spec(vs).at("hosts").error("match no host of the bound Gateway servers (IST0132)")
            )
    return listeners
