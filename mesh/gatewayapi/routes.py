"""HTTPRoutes -> the VirtualServices istiod derives: by parent and host, merged, sorted.

As pilot/pkg/config/kube/gateway/route_collections.go (HTTPRouteCollection,
mergeHTTPRoutes) and conversion.go (sortHTTPRoutes):
- a parentRef to a Gateway binds the route to that Gateway's listeners (``sectionName`` /
  ``port`` narrow it; the route's hostnames must meet the listener's); the key is the
  listener's Istio Gateway and each host of the route (``*`` when it names none);
- a parentRef to a Service (group ``""``, kind ``Service``) is the GAMMA mesh binding:
  key ``<namespace>[/<port>]/<service FQDN>``, gateways ``mesh``, a ``port`` match added
  to every route when the parentRef names a port (augmentPortMatch);
- every route of one key, from every HTTPRoute (oldest first; without creation times, as
  after one ``kubectl apply``, by namespace and name, the Gateway API's tie-break), is one
  VirtualService named after the key, its http routes sorted by the Gateway API's
  precedence: exact path, then prefix, then regex; longer paths first; a method match;
  more header matches; more query matches; routes without a match last; otherwise the
  order they came in (a stable sort).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mesh.gatewayapi.gateways import Listener
from mesh.gatewayapi.rules import convert_rule
from mesh.gatewayapi.semantics import GATEWAY, ROUTE_SEMANTICS
from mesh.manifests import HTTPRoute, Manifests, VirtualService
from mesh.translate.clusters import resolve_host
from mesh.translate.fields import NOT_SUPPORTED, Node, spec
from mesh.translate.hostnames import intersect_hosts

GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class _Parent:
    gateway: str  # "mesh" or a listener's "ns/<Istio Gateway>"
    key: str
    hosts: tuple[str, ...]
    port: int | None = None


def derived_virtual_services(
    manifests: Manifests, listeners: list[Listener]
) -> list[VirtualService]:
    merged: dict[str, tuple[HTTPRoute, _Parent, str, list[dict[str, Any]]]] = {}
    for route in sorted(manifests.of(HTTPRoute), key=lambda r: (r.namespace, r.name)):
        root = spec(route).only("parentRefs", "hostnames", "rules")
        hostnames = [h.str() for h in root.items("hostnames")] or ["*"]
        http: list[dict[str, Any]] = []
        for i, rule in enumerate(root.items("rules")):
            http += convert_rule(manifests, route, rule, i)
        refs = root.items("parentRefs")
        if not refs:
            raise root.at("parentRefs").error("is required (a Gateway or a Service)")
        for ref in refs:
            for parent in _parents(manifests, listeners, route, ref, hostnames):
                routes = http if parent.port is None else _with_port(http, parent.port)
                for host in parent.hosts:
                    key = f"{parent.key}/{host}"
                    if key not in merged:
                        merged[key] = (route, parent, host, [])
                    merged[key][3].extend(routes)
    out = []
    for key, (first, parent, host, routes) in merged.items():
        name = key.replace("/", "~")
        raw = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": name,
                "namespace": first.namespace,
                "annotations": {ROUTE_SEMANTICS: GATEWAY},
            },
            "spec": {"hosts": [host], "gateways": [parent.gateway], "http": sort_routes(routes)},
        }
        out.append(
            VirtualService(
                api_version=raw["apiVersion"],
                kind="VirtualService",
                name=name,
                namespace=first.namespace,
                raw=raw,
                source=first.source,
            )
        )
    return out


def _with_port(routes: list[dict[str, Any]], port: int) -> list[dict[str, Any]]:
    out = []
    for r in routes:
        matches = [{**m, "port": port} for m in r.get("match", [])] or [{"port": port}]
        out.append({**r, "match": matches})
    return out


def _parents(
    manifests: Manifests,
    listeners: list[Listener],
    route: HTTPRoute,
    ref: Node,
    hostnames: list[str],
) -> list[_Parent]:
    ref.only("group", "kind", "name", "namespace", "sectionName", "port")
    group = ref.at("group").str() if ref.has("group") else GATEWAY_GROUP
    kind = ref.at("kind").str() if ref.has("kind") else "Gateway"
    name = ref.at("name").str()
    namespace = ref.at("namespace").str() if ref.has("namespace") else route.namespace
    port = ref.at("port").int(1, 65535) if ref.has("port") else None
    if (group, kind) == ("", "Service"):
        if ref.has("sectionName"):
            raise ref.at("sectionName").error(f"{NOT_SUPPORTED} for a Service parent (use port)")
        service = resolve_host(manifests, name, namespace)
        if service is None or service.name != name:
            raise ref.at("name").error(f"{name!r} names no Service of {manifests.root}")
        if port is not None and port not in [p.port for p in service.ports]:
            raise ref.at("port").error(f"{port} is not a port of Service/{name}")
        key = route.namespace + (f"/{port}" if port is not None else "")
        return [_Parent("mesh", key, (service.fqdn,), port)]
    if (group, kind) != (GATEWAY_GROUP, "Gateway"):
        raise ref.at("kind").error(f"{kind} {NOT_SUPPORTED} (a Gateway or a Service)")
    section = ref.at("sectionName").str() if ref.has("sectionName") else None
    of_gateway = [
        lis for lis in listeners if lis.gateway.name == name and lis.gateway.namespace == namespace
    ]
    if not of_gateway:
        raise ref.at("name").error(f"{name!r} names no Gateway of {manifests.root}")
    out = []
    for lis in of_gateway:
        if section is not None and lis.name != section:
            continue
        if port is not None and lis.port != port:
            continue
        # istiod keeps a VirtualService per route host; one the listener never serves
        # routes nothing, so it is left out here (mesh.translate would call it IST0132)
        hosts = tuple(h for h in hostnames if intersect_hosts([lis.hostname or "*"], [h]))
        if hosts:
            out.append(_Parent(lis.internal, lis.internal, hosts))
    if not out:
        raise ref.error(
            f"attaches to no listener of Gateway/{name} (sectionName, port or hostnames match none)"
        )
    return out


def _uri_rank(match: dict[str, Any] | None) -> tuple[int, int]:
    """getURIRank and getURILength: exact 3, prefix 2, regex 1, none -1; its length."""
    uri = (match or {}).get("uri")
    if not uri:
        return -1, 0
    kind, value = next(iter(uri.items()))
    return {"exact": 3, "prefix": 2, "regex": 1}[kind], len(value)


def _less(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """conversion.go sortHTTPRoutes' less function, on match[0] (there is only one)."""
    if not a.get("match"):
        return False
    if not b.get("match"):
        return True
    m1, m2 = a["match"][0], b["match"][0]
    r1, r2 = _uri_rank(m1), _uri_rank(m2)
    if r1[0] != r2[0]:
        return r1[0] > r2[0]
    if r1[1] != r2[1]:
        return r1[1] > r2[1]
    if ("method" in m1) != ("method" in m2):
        return "method" in m1
    h1, h2 = len(m1.get("headers", {})), len(m2.get("headers", {}))
    if h1 != h2:
        return h1 > h2
    return len(m1.get("queryParams", {})) > len(m2.get("queryParams", {}))


def sort_routes(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Gateway API's precedence, stably (Go's sort.SliceStable with _less)."""

    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        return -1 if _less(a, b) else (1 if _less(b, a) else 0)

    return sorted(routes, key=functools.cmp_to_key(cmp))
