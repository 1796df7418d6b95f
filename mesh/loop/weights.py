"""Route weights owned by a rollout, laid over the manifests of every generation.

Flagger and Argo Rollouts edit the VirtualService object in the cluster, not the files in
git: a progressive rollout owns the weights of one route while it runs. Locally the
control plane keeps such overrides and lays them over each generation it builds (after
reading the directory, before translating), so the files on disk stay as they are and a
saved edit of another field keeps the rollout's weights.

The route a rollout owns is the *default route* of SERVICE: the last HTTP rule without a
`match` of the mesh VirtualService for it (Istio's catch-all; the `x-canary` rule before
it stays as it is).
"""

from __future__ import annotations

from typing import Any

from mesh.errors import TranslationError
from mesh.manifests import Manifests, VirtualService
from mesh.translate.clusters import resolve_host
from mesh.translate.listeners import mesh_virtual_service


def default_route(manifests: Manifests, service: str) -> tuple[VirtualService, int]:
    """The mesh VirtualService of SERVICE and the index of its default route;
    TranslationError naming what is missing."""
    svc = resolve_host(manifests, service, "default")
    if svc is None:
        names = ", ".join(s.name for s in manifests.services)
        raise TranslationError(f"no Service {service!r} in the manifests (have: {names})")
    vs = mesh_virtual_service(manifests, svc)
    if vs is None:
        raise TranslationError(f"Service/{svc.name}: no mesh VirtualService routes it")
    rules = vs.spec.get("http") or []
    for index in range(len(rules) - 1, -1, -1):
        rule = rules[index]
        if isinstance(rule, dict) and not rule.get("match") and rule.get("route"):
            return vs, index
    raise TranslationError(
        f"{vs.where()}: spec.http: no default route (a rule without match) for a rollout to own"
    )


def route_weights(manifests: Manifests, service: str) -> dict[str, int]:
    """{subset: weight} of SERVICE's default route (one destination: weight 100)."""
    vs, index = default_route(manifests, service)
    route = vs.spec["http"][index]["route"]
    if len(route) == 1:
        return {str(route[0]["destination"].get("subset", "")): 100}
    return {str(d["destination"].get("subset", "")): int(d.get("weight", 0)) for d in route}


def set_route_weights(manifests: Manifests, service: str, weights: dict[str, int]) -> None:
    """SERVICE's default route sends WEIGHTS (subset -> percent, summing to 100) in place;
    subsets at 0 stay listed (Istio accepts weight 0), so a rollback is one edit."""
    if sum(weights.values()) != 100 or any(w < 0 for w in weights.values()):
        raise TranslationError(f"weights {weights} must be 0 or more and sum to 100")
    vs, index = default_route(manifests, service)
    rule: dict[str, Any] = vs.spec["http"][index]
    template = dict(rule["route"][0]["destination"])
    rule["route"] = [
        {"destination": {**template, "subset": subset}, "weight": weight}
        for subset, weight in weights.items()
    ]
