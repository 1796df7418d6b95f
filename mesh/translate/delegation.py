"""VirtualService delegation: a root rule's ``delegate`` replaced by the delegate's rules.

A *root* VirtualService (one with ``hosts``) may hand a rule to a *delegate*
VirtualService (one without ``hosts`` or ``gateways``), so a platform team owns the host
and the paths it gives away, and an app team the routes behind them. istiod merges them
before anything else sees the routes (``pilot/pkg/model/virtualservice_controller.go``
``mergeVirtualServices``, ``pilot/pkg/model/virtualservice.go`` ``MergeHTTPRoutes``),
and so does the local mesh:

- the delegate is ``delegate.name`` in ``delegate.namespace`` (the root's when unset), a
  VirtualService without hosts exported to the root's namespace; istiod drops a rule
  whose delegate it cannot find, the local mesh refuses the generation naming it
  (``mesh check``: IST0101);
- each delegate rule becomes one rule, in order: its matches merged with the root
  rule's (each delegate match must fall inside a root match: a prefix within the root's
  prefix, an exact path under it, no other value for a header, query parameter, port or
  gateway; a match that falls inside none drops that delegate rule, as istiod does);
  the root's ``rewrite``, ``directResponse``, ``timeout``, ``retries``, ``fault``,
  mirrors, ``corsPolicy`` and ``headers`` fill what the delegate rule leaves unset; the
  names join as ``root-delegate``;
- a delegate's rule may not delegate again; a root rule may not also ``route`` or
  ``redirect`` (``pkg/config/validation/virtualservice.go`` ``validateHTTPRouteConflict``).

The merged rules carry the delegate: an error in one names the delegate's file and rule
(a field the root filled in, too), and its destinations' short names resolve in the
delegate's namespace.
"""

from __future__ import annotations

import copy
from typing import Any

from mesh.manifests import Manifests, VirtualService
from mesh.translate.fields import Node, spec

#: what a root rule gives every rule of its delegate that leaves it unset (mergeHTTPRoute)
INHERITED = (
    "rewrite",
    "directResponse",
    "timeout",
    "retries",
    "fault",
    "mirror",
    "mirrorPercent",
    "mirrorPercentage",
    "corsPolicy",
    "mirrors",
    "headers",
)
STRING_MATCHES = ("uri", "scheme", "method", "authority")
MAP_MATCHES = ("headers", "withoutHeaders", "queryParams")


def is_delegate(vs: VirtualService) -> bool:
    """A VirtualService without hosts: only reachable through a root's ``delegate``."""
    return not spec(vs).items("hosts")


def find_delegate(manifests: Manifests, rule: Node) -> VirtualService:
    """The delegate RULE (a root rule) names; TranslationError when it is not there."""
    ref = rule.at("delegate").only("name", "namespace")
    name = ref.at("name").str()
    namespace = ref.at("namespace").str() if ref.has("namespace") else rule.obj.namespace
    for vs in manifests.virtual_services:
        if (vs.name, vs.namespace) == (name, namespace) and is_delegate(vs):
            if exported_to([e.str() for e in spec(vs).items("exportTo")], vs.namespace,
                           rule.obj.namespace):  # fmt: skip
                return vs
            raise ref.error(
                f"names VirtualService {namespace}/{name}, which is not exported to "
                f"namespace {rule.obj.namespace} (its exportTo)"
            )
    raise ref.error(
        f"names no VirtualService without hosts {namespace}/{name} in {manifests.root}; "
        "istiod drops this rule (IST0101)"
    )


def exported_to(export_to: list[str], owner: str, namespace: str) -> bool:
    """Whether an object of namespace OWNER with EXPORT_TO is visible to NAMESPACE (no
    exportTo: everywhere, the mesh's default)."""
    if not export_to:
        return True
    return "*" in export_to or namespace in export_to or ("." in export_to and owner == namespace)


def delegated_rules(manifests: Manifests, rule: Node) -> list[Node]:
    """The rules ROOT RULE's delegate contributes, merged with it (MergeHTTPRoutes)."""
    for field in ("route", "redirect"):
        if rule.has(field):
            raise rule.at(field).error("must not be set on a rule with delegate")
    delegate = find_delegate(manifests, rule)
    root = rule.value
    out = []
    for sub in spec(delegate).items("http"):
        if sub.has("delegate"):
            raise sub.at("delegate").error("is not allowed in a delegate VirtualService's rule")
        merged = _merge_rule(root, sub.value)
        if merged is not None:
            out.append(Node(sub.obj, sub.path, merged))
    return out


def _merge_rule(root: dict[str, Any], leaf: dict[str, Any]) -> dict[str, Any] | None:
    matches = _merge_matches(root.get("match") or [], leaf.get("match") or [])
    if matches is None:
        return None  # a conflict: istiod ignores the delegate's rule
    out = copy.deepcopy(leaf)
    if matches:
        out["match"] = matches
    out["name"] = _joined(root.get("name"), leaf.get("name"))
    if not out["name"]:
        del out["name"]
    for key in INHERITED:
        if out.get(key) is None and root.get(key) is not None:
            out[key] = copy.deepcopy(root[key])
    return out


def _joined(root: Any, leaf: Any) -> str:
    if not leaf:
        return str(root or "")
    return f"{root}-{leaf}" if root else str(leaf)


def _merge_matches(root: list[Any], leaf: list[Any]) -> list[dict[str, Any]] | None:
    """mergeHTTPMatchRequests: every delegate match merged with each root match it does
    not conflict with; None when a delegate match fits under no root match."""
    if not root:
        return copy.deepcopy(leaf)
    if not leaf:
        return copy.deepcopy(root)
    out = []
    for sub in leaf:
        fitting = [_merge_match(top, sub) for top in root if not _conflict(top, sub)]
        if not fitting:
            return None
        out += fitting
    return out or None


def _merge_match(root: dict[str, Any], leaf: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(leaf)
    out["name"] = _joined(root.get("name"), leaf.get("name"))
    if not out["name"]:
        del out["name"]
    for key in (*STRING_MATCHES, "port", "sourceNamespace", "statPrefix"):
        if not out.get(key) and root.get(key):
            out[key] = copy.deepcopy(root[key])
    for key in (*MAP_MATCHES, "sourceLabels"):
        both = {**(root.get(key) or {}), **(leaf.get(key) or {})}
        if both:
            out[key] = copy.deepcopy(both)
    if not out.get("gateways") and root.get("gateways"):
        out["gateways"] = list(root["gateways"])
    return out


def _conflict(root: dict[str, Any], leaf: dict[str, Any]) -> bool:
    """hasConflict: the delegate match asks for something the root match excludes."""
    for key in STRING_MATCHES:
        if _string_conflict(root.get(key), leaf.get(key)):
            return True
    for key in MAP_MATCHES:
        for name, value in (leaf.get(key) or {}).items():
            if _string_conflict((root.get(key) or {}).get(name), value):
                return True
    if bool(root.get("ignoreUriCase")) != bool(leaf.get("ignoreUriCase")):
        return True
    if root.get("port") and leaf.get("port") and root["port"] != leaf["port"]:
        return True
    if root.get("sourceNamespace") and leaf.get("sourceNamespace") != root["sourceNamespace"]:
        return True
    for name, value in (leaf.get("sourceLabels") or {}).items():
        if name in (root.get("sourceLabels") or {}) and root["sourceLabels"][name] != value:
            return True
    top, sub = root.get("gateways") or [], leaf.get("gateways") or []
    return bool(top and sub and not set(sub) <= set(top))


def _string_conflict(root: Any, leaf: Any) -> bool:
    """stringMatchConflict: no conflict when either is unset; a regex only beside an
    unset match; an exact root admits the same exact; a prefix root admits a prefix or
    an exact path that starts with it."""
    if not isinstance(root, dict) or not isinstance(leaf, dict):
        return False
    if root.get("regex"):
        if leaf.get("regex") or leaf.get("prefix") or leaf.get("exact"):
            return True
    if leaf.get("regex"):
        if root.get("regex") or root.get("prefix") or root.get("exact"):
            return True
    if root.get("exact"):
        return bool(leaf.get("prefix")) or leaf.get("exact") != root["exact"]
    if root.get("prefix"):
        if leaf.get("prefix"):
            return not str(leaf["prefix"]).startswith(str(root["prefix"]))
        if leaf.get("exact"):
            return not str(leaf["exact"]).startswith(str(root["prefix"]))
    return True
