"""Where a VirtualService derived from an HTTPRoute becomes different Envoy routes.

istiod marks the VirtualServices it converts from Gateway API routes with the annotation
``internal.istio.io/route-semantics: gateway``, and its route builder
(pilot/pkg/networking/core/route/route.go) then:
- writes a ``PathPrefix`` other than ``/`` as ``path_separated_prefix`` (the Gateway API
  matches whole path segments: ``/admin`` matches ``/admin`` and ``/admin/fault``, never
  ``/administrator``), the trailing ``/`` trimmed (TranslateRouteMatch);
- answers 500 instead of 503 when a route's cluster does not exist
  (``cluster_not_found_response_code``, applyHTTPRouteDestination), as the Gateway API
  requires for an invalid backend;
- rewrites a prefix to ``/`` with a regex that removes the matched prefix and keeps one
  ``/`` (``^<prefix>(/?)(.*)`` -> ``/\2``): a plain ``prefix_rewrite: /`` would turn
  ``/old/x`` into ``//x``.

No imports from mesh.translate: mesh/translate/routes.py calls this.
"""

from __future__ import annotations

from typing import Any

ROUTE_SEMANTICS = "internal.istio.io/route-semantics"
GATEWAY = "gateway"


def gateway_semantics(obj: Any) -> bool:
    """True for a VirtualService istiod derived from a Gateway API route."""
    meta = obj.raw.get("metadata") if isinstance(obj.raw, dict) else None
    annotations = (meta or {}).get("annotations") or {}
    return annotations.get(ROUTE_SEMANTICS) == GATEWAY


def apply_gateway_semantics(route: dict[str, Any]) -> None:
    """Change the Envoy ROUTE built from such a VirtualService rule in place."""
    match = route.get("match", {})
    prefix = match.get("prefix")
    if prefix is not None and prefix != "/":
        rest = {k: v for k, v in match.items() if k != "prefix"}
        route["match"] = {"path_separated_prefix": prefix.rstrip("/") or "/", **rest}
    action = route.get("route")
    if action is not None:
        action["cluster_not_found_response_code"] = "INTERNAL_SERVER_ERROR"
        if action.get("prefix_rewrite") == "/":
            prefix = route["match"].get("path_separated_prefix", "")
            del action["prefix_rewrite"]
            action["regex_rewrite"] = {
                "pattern": {"regex": f"^{quote_meta(prefix)}(/?)(.*)"},
                "substitution": "/\\2",
            }


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: a backslash before each of ``\\.+*?()|[]{}^$``."""
    return "".join("\\" + c if c in GO_META else c for c in text)


GO_META = frozenset("\\.+*?()|[]{}^$")
