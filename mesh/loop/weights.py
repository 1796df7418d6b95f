"""Route weights owned by a rollout, laid over the manifests of every generation.

Flagger and Argo Rollouts edit the route object in the cluster, not the files in git: a
progressive rollout owns the weights of one route while it runs. Locally the control
plane keeps such overrides and lays them over each generation it builds (after reading
the directory, before translating), so the files on disk stay as they are and a saved
edit of another field keeps the rollout's weights.

The route a rollout owns is the *default route* of SERVICE, the catch-all rule (the
`x-canary` rule before it stays as it is) of whichever object routes SERVICE:
- an HTTPRoute bound to the Service (GAMMA, a parentRef of kind Service): its last rule
  without `matches`, whose backendRefs name Services (Flagger's gatewayapi router sets
  the weights of the primary and canary Services there). The weights are set on the
  HTTPRoute and the VirtualServices istiod would derive are derived again
  (mesh/gatewayapi), so the conversion stays the one source of Gateway API semantics;
- else the mesh VirtualService for it: its last HTTP rule without a `match`, whose
  destinations name subsets.
The names a rollout moves weight between are subsets or backendRef Services accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import HTTPRoute, Manifests, Obj, Service
from mesh.translate.clusters import resolve_host
from mesh.translate.listeners import mesh_virtual_service


@dataclass(frozen=True)
class Shape:
    """Where an object kind keeps its rules and a rule's match and destinations."""

    kind: str
    rules: str  # spec.<rules>
    match: str
    route: str
    noun: str  # what a destination names, in messages


VS_SHAPE = Shape("VirtualService", "http", "match", "route", "subset")
ROUTE_SHAPE = Shape("HTTPRoute", "rules", "matches", "backendRefs", "backendRef")


def bound_route(manifests: Manifests, service: Service) -> HTTPRoute | None:
    """The HTTPRoute whose parentRef is SERVICE (the GAMMA binding), if one is."""
    for route in manifests.of(HTTPRoute):
        for ref in route.spec.get("parentRefs") or []:
            if not isinstance(ref, dict) or (ref.get("group"), ref.get("kind")) != ("", "Service"):
                continue
            namespace = ref.get("namespace") or route.namespace
            if resolve_host(manifests, str(ref.get("name")), namespace) is service:
                return route
    return None


def owner(manifests: Manifests, service: str) -> tuple[Obj, Shape]:
    """The object whose default route a rollout of SERVICE owns, and its shape;
    TranslationError naming what is missing."""
    svc = resolve_host(manifests, service, "default")
    if svc is None:
        names = ", ".join(s.name for s in manifests.services)
        raise TranslationError(f"no Service {service!r} in the manifests (have: {names})")
    route = bound_route(manifests, svc)
    if route is not None:
        return route, ROUTE_SHAPE
    vs = mesh_virtual_service(manifests, svc)
    if vs is None:
        raise TranslationError(
            f"Service/{svc.name}: no mesh VirtualService or HTTPRoute (parentRef to the "
            "Service) routes it"
        )
    return vs, VS_SHAPE


def default_index(obj: Obj, shape: Shape) -> int | None:
    """The index of OBJ's default rule: the last without a match that has destinations."""
    rules = obj.spec.get(shape.rules) or []
    for index in range(len(rules) - 1, -1, -1):
        rule = rules[index]
        if isinstance(rule, dict) and not rule.get(shape.match) and rule.get(shape.route):
            return index
    return None


def default_route(manifests: Manifests, service: str) -> tuple[Obj, int, Shape]:
    """The object routing SERVICE, the index of its default route and its shape."""
    obj, shape = owner(manifests, service)
    index = default_index(obj, shape)
    if index is None:
        rules = obj.spec.get(shape.rules) or []
        delegated = [i for i, r in enumerate(rules) if isinstance(r, dict) and r.get("delegate")]
        why = (
            f" (http[{delegated[0]}] delegates its routes: a rollout owns a default route of "
            "the root VirtualService, so write the catch-all rule there)"
            if delegated
            else ""
        )
        raise TranslationError(
            f"{obj.where()}: spec.{shape.rules}: no default route (a rule without "
            f"{shape.match}) for a rollout to own{why}"
        )
    return obj, index, shape


def _name(dest: dict[str, Any], shape: Shape) -> str:
    if shape is ROUTE_SHAPE:
        return str(dest.get("name", ""))
    return str(dest["destination"].get("subset", ""))


def route_weights(manifests: Manifests, service: str) -> dict[str, int]:
    """{subset or backendRef Service: weight} of SERVICE's default route (one
    destination: weight 100; a backendRef without weight has the Gateway API's 1)."""
    obj, index, shape = default_route(manifests, service)
    route = obj.spec[shape.rules][index][shape.route]
    if len(route) == 1:
        return {_name(route[0], shape): 100}
    default = 1 if shape is ROUTE_SHAPE else 0
    return {_name(d, shape): int(d.get("weight", default)) for d in route}


def route_names(manifests: Manifests, service: str) -> list[str] | None:
    """The Services the backendRefs of SERVICE's HTTPRoute name (any rule), sorted: what
    a rollout may move weight between; None when a VirtualService routes SERVICE (its
    subsets are the clusters Envoy has)."""
    obj, shape = owner(manifests, service)
    if shape is not ROUTE_SHAPE:
        return None
    names = {
        str(ref.get("name"))
        for rule in obj.spec.get("rules") or []
        if isinstance(rule, dict)
        for ref in rule.get("backendRefs") or []
        if isinstance(ref, dict)
    }
    return sorted(names)


def weighted(template: dict[str, Any], shape: Shape, name: str, weight: int) -> dict[str, Any]:
    """One destination of the default route: TEMPLATE's sending to NAME."""
    if shape is ROUTE_SHAPE:
        return {**template, "name": name, "weight": weight}
    return {"destination": {**template["destination"], "subset": name}, "weight": weight}


def set_route_weights(manifests: Manifests, service: str, weights: dict[str, int]) -> None:
    """SERVICE's default route sends WEIGHTS (name -> percent, summing to 100) in place;
    names at 0 stay listed (Istio and the Gateway API accept weight 0), so a rollback is
    one edit. On an HTTPRoute the derived VirtualServices are derived again."""
    if sum(weights.values()) != 100 or any(w < 0 for w in weights.values()):
        raise TranslationError(f"weights {weights} must be 0 or more and sum to 100")
    obj, index, shape = default_route(manifests, service)
    rule: dict[str, Any] = obj.spec[shape.rules][index]
    template = {k: v for k, v in rule[shape.route][0].items() if k != "weight"}
    rule[shape.route] = [weighted(template, shape, n, w) for n, w in weights.items()]
    if shape is ROUTE_SHAPE:
        from mesh.gatewayapi import derive

        manifests.derived = derive(manifests)
