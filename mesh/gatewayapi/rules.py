"""One HTTPRoute rule -> VirtualService http routes, as istiod's convertHTTPRoute writes them.

pilot/pkg/config/kube/gateway/conversion.go, with the defaults the API server stores
(the Gateway API CRDs: a rule without ``matches`` matches ``PathPrefix /``, a match
without ``path`` too; header, query and path types default to ``Exact``/``PathPrefix``;
a backendRef is a core ``Service`` of the route's namespace with weight 1):
- a rule with N matches is N VirtualService routes of one match each (route_collections.go
  splits them so each can be sorted on its own), named ``<ns>.<route>.<rule index>``
  unless the rule has a name;
- path -> ``uri`` exact/prefix/regex (a PathPrefix's trailing ``/`` trimmed), headers and
  queryParams -> exact/regex, method -> ``method.exact`` (createURIMatch, ...);
- RequestHeaderModifier / ResponseHeaderModifier -> ``headers.request|response``
  (set/add by lower-cased name, remove) on the rule or on one backend;
- RequestMirror (on the rule) -> one of ``mirrors``: its backendRef as the destination,
  ``percent`` or ``fraction`` as the percentage (createMirrorFilter);
- RequestRedirect -> ``redirect`` (createRedirectFilter): ``statusCode`` (302 by default),
  ``hostname``, ``scheme``, ``port`` (else the request's port, or the scheme's default
  when a scheme is given), ``path`` ReplaceFullPath / ReplacePrefixMatch as ``uri`` /
  ``prefixRewrite``; the rule's backends are then not used;
- URLRewrite -> ``rewrite`` (createRewriteFilter): ``hostname`` as ``authority``,
  ReplacePrefixMatch as ``uri`` (one trailing ``/`` trimmed, ``/`` if nothing is left),
  ReplaceFullPath as ``uriRegexRewrite`` of ``/.*``;
- CORS -> ``corsPolicy`` (createCorsFilter, mesh/gatewayapi/cors.py);
- ``timeouts.request`` -> ``timeout``; ``timeouts.backendRequest`` -> ``timeout`` as well
  when the rule has no retry (this release's standard channel has none);
- backendRefs with weight 0 dropped; one left -> no weight; none at all -> a direct
  500 (the Gateway API's answer when no backend is left).

Refused, naming the field: extension refs, a filter other than the header modifiers on
one backend (as istiod does), backends that are not a Service of the
same namespace, a Service or port the manifests do not have.
"""

from __future__ import annotations

from typing import Any

from mesh.gatewayapi import path_filters
from mesh.gatewayapi.cors import cors
from mesh.manifests import HTTPRoute, Manifests
from mesh.translate.clusters import resolve_host
from mesh.translate.fields import NOT_SUPPORTED, Node

HEADER_FILTERS = {"RequestHeaderModifier": "request", "ResponseHeaderModifier": "response"}
#: Filter types a rule takes besides the header modifiers (not on a single backend).
RULE_ONLY_FILTERS = ("RequestMirror", "RequestRedirect", "URLRewrite", "CORS")
RULE_FIELDS = ("name", "matches", "filters", "backendRefs", "timeouts")
# The match the API server stores for a rule without one: PathPrefix "/", as a VS match.
DEFAULT_MATCH: dict[str, Any] = {"uri": {"prefix": "/"}}


def convert_rule(
    manifests: Manifests, route: HTTPRoute, rule: Node, index: int
) -> list[dict[str, Any]]:
    """The VirtualService http routes of RULE, the INDEX-th of ROUTE."""
    rule.only(*RULE_FIELDS)
    base: dict[str, Any] = {
        "name": rule.at("name").str()
        if rule.has("name")
        else f"{route.namespace}.{route.name}.{index}"
    }
    for filt in rule.items("filters"):
        kind = filt.at("type").value
        if kind == "RequestMirror":
            base.setdefault("mirrors", []).append(_mirror(manifests, route, filt))
        elif kind == "RequestRedirect":
            base["redirect"] = path_filters.redirect(filt)
        elif kind == "CORS":
            base["corsPolicy"] = cors(filt)
        elif kind == "URLRewrite":
            rewrite = path_filters.rewrite(filt)
            if rewrite:
                base["rewrite"] = rewrite
        else:
            side, ops = _header_filter(filt, RULE_ONLY_FILTERS)
            base.setdefault("headers", {})[side] = ops
    _timeouts(rule.get("timeouts"), base)
    refs = rule.items("backendRefs")
    weights = [_weight(ref) for ref in refs]
    if "redirect" in base:
        pass  # route.go answers the redirect and never looks at the backends
    elif sum(weights) == 0:
        base["directResponse"] = {"status": 500}
    else:
        kept = [(ref, w) for ref, w in zip(refs, weights, strict=True) if w > 0]
        base["route"] = [
            _destination(manifests, route, ref, w if len(kept) > 1 else 0) for ref, w in kept
        ]
    nodes = rule.items("matches") if rule.at("matches").value is not None else None
    path_filters.check_prefix_matches(rule.items("filters"), _path_types(nodes or []))
    matches = [_match(m) for m in nodes] if nodes is not None else [DEFAULT_MATCH]
    if not matches:  # `matches: []` as written: one route without a match
        return [base]
    return [{**base, "match": [m]} for m in matches]


def _path_types(matches: list[Node]) -> list[str]:
    """Each match's path type, with the CRD's defaults (no path: PathPrefix /)."""
    out = []
    for m in matches:
        path = m.at("path")
        out.append(str(path.at("type").value) if path.has("type") else "PathPrefix")
    return out


def _match(node: Node) -> dict[str, Any]:
    node.only("path", "headers", "queryParams", "method")
    out: dict[str, Any] = {}
    path = node.at("path").only("type", "value") if node.has("path") else None
    kind = path.at("type").str() if path is not None and path.has("type") else "PathPrefix"
    value = path.at("value").str() if path is not None and path.has("value") else "/"
    if kind == "PathPrefix":  # "a trailing `/` is ignored" (strings.TrimSuffix, once)
        out["uri"] = {"prefix": value[:-1] if value != "/" and value.endswith("/") else value}
    elif kind == "Exact":
        out["uri"] = {"exact": value}
    elif kind == "RegularExpression":
        out["uri"] = {"regex": value}
    else:
        raise node.at("path").at("type").error(f"{kind!r} is not a path match type")
    for key in ("headers", "queryParams"):
        entries = {}
        for entry in node.items(key):
            entry.only("name", "value", "type")
            tp = entry.at("type").str() if entry.has("type") else "Exact"
            if tp not in ("Exact", "RegularExpression"):
                raise entry.at("type").error(
                    f"{tp!r} is not a match type (Exact, RegularExpression)"
                )
            entries[entry.at("name").str()] = {
                "exact" if tp == "Exact" else "regex": entry.at("value").str()
            }
        if entries:
            out[key] = entries
    if node.has("method"):
        out["method"] = {"exact": node.at("method").str()}
    return out


def _header_filter(filt: Node, others: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """A header modifier's operations; any other type is refused, naming what is run
    (OTHERS: the types the caller handles itself)."""
    filt.only("type", *path_filters.FILTER_FIELDS.values())
    kind = filt.at("type").str()
    if kind not in HEADER_FILTERS:
        raise filt.error(f"(type {kind}) {NOT_SUPPORTED} ({_and([*HEADER_FILTERS, *others])} only)")
    node = path_filters.filter_body(filt)
    node.only("set", "add", "remove")
    ops: dict[str, Any] = {}
    for op in ("set", "add"):
        values: dict[str, str] = {}
        for entry in node.items(op):
            entry.only("name", "value")
            name, value = entry.at("name").str().lower(), entry.at("value").str()
            if any(c != "\t" and (ord(c) < 0x20 or ord(c) == 0x7F) for c in value):
                raise entry.at("value").error("contains invalid characters")
            values.setdefault(name, value)  # "Subsequent entries ... MUST be ignored"
        if values:
            ops[op] = values
    removes = [n.str() for n in node.items("remove")]
    if removes:
        ops["remove"] = removes
    return HEADER_FILTERS[kind], ops


def _and(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def _mirror(manifests: Manifests, route: HTTPRoute, filt: Node) -> dict[str, Any]:
    """A RequestMirror filter -> a VirtualService `mirrors` entry (createMirrorFilter)."""
    node = path_filters.filter_body(filt)
    node.only("backendRef", "percent", "fraction")
    ref = node.at("backendRef").only("group", "kind", "name", "namespace", "port")
    out: dict[str, Any] = {"destination": _destination(manifests, route, ref, 0)["destination"]}
    if node.has("fraction"):
        fraction = node.at("fraction").only("numerator", "denominator")
        denominator = fraction.at("denominator").int(1) if fraction.has("denominator") else 100
        numerator = fraction.at("numerator").int(0, denominator)
        out["percentage"] = {"value": 100 * numerator / denominator}
    elif node.has("percent"):
        out["percentage"] = {"value": float(node.at("percent").int(0, 100))}
    return out


def _timeouts(node: Node | None, out: dict[str, Any]) -> None:
    if node is None:
        return
    node.only("request", "backendRequest")
    for key in ("request", "backendRequest"):  # no retry: backendRequest is the timeout too
        if node.has(key) and node.at(key).seconds() > 0:
            out["timeout"] = node.at(key).duration()


def _weight(ref: Node) -> int:
    return ref.at("weight").int(0, 1_000_000) if ref.has("weight") else 1


def _destination(manifests: Manifests, route: HTTPRoute, ref: Node, weight: int) -> dict[str, Any]:
    ref.only("group", "kind", "name", "namespace", "port", "weight", "filters")
    group = ref.at("group").str() if ref.has("group") else ""
    kind = ref.at("kind").str() if ref.has("kind") else "Service"
    if (group, kind) != ("", "Service"):
        raise ref.at("kind").error(f"{group or 'core'}/{kind} {NOT_SUPPORTED} (a Service only)")
    name = ref.at("name").str()
    if "." in name:
        raise ref.at("name").error("must be the name of a Service, not a hostname")
    namespace = ref.at("namespace").str() if ref.has("namespace") else route.namespace
    if namespace != route.namespace:
        raise ref.at("namespace").error(f"{NOT_SUPPORTED} (a ReferenceGrant would be needed)")
    service = resolve_host(manifests, name, namespace)
    if service is None:
        raise ref.at("name").error(
            f"{name!r} names no Service of {manifests.root} (istiod would answer 500)"
        )
    if not ref.has("port"):
        raise ref.at("port").error("is required for a Service backend")
    port = ref.at("port").int(1, 65535)
    if port not in [p.port for p in service.ports]:
        raise ref.at("port").error(f"{port} is not a port of Service/{service.name}")
    out: dict[str, Any] = {"destination": {"host": service.fqdn, "port": {"number": port}}}
    if weight:
        out["weight"] = weight
    for filt in ref.items("filters"):
        side, ops = _header_filter(filt)
        out.setdefault("headers", {})[side] = ops
    return out
