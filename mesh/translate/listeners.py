"""Mesh Services -> Envoy listeners with their route tables, and what every listener shares.

- one outbound listener per Service port, playing the caller's sidecar: the Service's
  mesh VirtualService (or Istio's default route) over the Service's clusters;
- the connection manager, listener and virtual host shapes, and which Gateways a
  VirtualService binds to, which the gateway listeners (mesh/translate/gateways.py) use too.
"""

from __future__ import annotations

from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Manifests, Service, VirtualService
from mesh.translate.clusters import resolve_host
from mesh.translate.cors import cors_filter
from mesh.translate.fault import FAULT_FILTER, HTTP_FAULT
from mesh.translate.fields import spec
from mesh.translate.hcm import HCM, istio_hcm, router_filter
from mesh.translate.hcm import route_config as _route_config
from mesh.translate.placement import Placement
from mesh.translate.routes import RouteContext, default_route, vs_routes
from mesh.translate.tcp import is_tcp, outbound_tcp_listener
from mesh.translate.telemetry import CLIENT, tracing_spec
from mesh.translate.tracing import add_tracing, outbound_service

XFCC_DETAILS = {"subject": True, "cert": True, "dns": True, "uri": True}


def connection_manager(
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
        # gateway.go buildGatewayConnectionManager: a client's own x-forwarded-client-cert
        # is dropped; over mutual TLS the gateway sets it from the client's certificate.
        config["forward_client_cert_details"] = "SANITIZE_SET"
        config["set_current_client_cert_details"] = XFCC_DETAILS
        # Kept on purpose, unlike istiod: a client's x-request-id survives the edge, so one
        # id follows a request through both hops (the propagation demo, access logs and
        # traces are looked up by it). A cluster's ingress gateway replaces it (Envoy
        # treats every client as external there).
        config["preserve_external_request_id"] = True
    return {"name": HCM, "typed_config": config}


def http_listener(name: str, address: str, port: int, hcm: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        # as istiod sets on gateway and sidecar-outbound listeners: Envoy's spans are CLIENT
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [hcm]}],
    }


def virtual_host(name: str, domains: list[str], routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "domains": domains,
        "routes": routes,
        "include_request_attempt_count": True,
    }


# --------------------------------------------------------------------------- VS binding


def vs_gateways(vs: VirtualService) -> list[str]:
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
        if not root.items("hosts"):  # a delegate (mesh/translate/delegation.py)
            if root.has("gateways"):
                raise root.at("gateways").error(
                    "must not be set on a delegate VirtualService (one without hosts)"
                )
        for i, name in enumerate(vs_gateways(vs)):
            if name != "mesh" and name not in gateways:
                raise root.at("gateways").at(i).error(f"names no Gateway of {manifests.root}")
        if not root.items("http"):
            raise root.at("http").error("is required (tcp and tls routes are not supported)")


def mesh_virtual_service(manifests: Manifests, service: Service) -> VirtualService | None:
    """The mesh-bound VirtualService whose hosts name SERVICE (at most one, as IST0109)."""
    found: list[VirtualService] = []
    for vs in manifests.virtual_services:
        if "mesh" not in vs_gateways(vs):
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
        if "mesh" not in vs_gateways(vs):
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
            ctx = RouteContext(manifests, ("mesh",), port.port, service, placement.caller)
            routes = vs_routes(vs, ctx) if vs else [default_route(service, port.port)]
            name = f"{service.fqdn}:{port.port}"
            route_config = _route_config(name, [virtual_host(name, ["*"], routes)])
            local_port = placement.service_ports[(service.name, port.port)]
            traced_as = (
                outbound_service(service.name),
                placement.traces,
                tracing_spec(manifests, service.namespace, CLIENT),
            )
            prefix = f"outbound_{service.name}_{port.port}"
            hcm = connection_manager(prefix, route_config, False, traced_as)
            listeners.append(
                http_listener(f"outbound_{name}", placement.listen_address, local_port, hcm)
            )
    return listeners
