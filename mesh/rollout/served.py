"""What Envoy serves for a Service, read from its admin API (not from our own state).

- `served_weights`: {subset: percent} of the Service's default route (the last route of
  its route table `HOST:PORT`), from `/config_dump?resource=dynamic_route_configs`; a
  route to one cluster counts as 100, subsets at weight 0 are left out (istiod and the
  translation drop them). A cluster of another Service (an HTTPRoute's backendRef) is
  named by that Service (metrics.target_name).
- `subsets`: the subsets Envoy has a cluster for (`outbound|PORT|SUBSET|HOST`), or the
  Services of NAMES that it has one for (`outbound|PORT||NAME.default...`).
"""

from __future__ import annotations

import time

import httpx

from mesh import admin
from mesh.rollout.metrics import fqdn, target_name

POLL_S = 0.1


def _name(cluster: str, service: str) -> str:
    name = target_name(cluster, service)
    return cluster if name is None else name


def served_weights(admin_url: str, service: str, client: httpx.Client) -> dict[str, int]:
    """{subset: weight} of SERVICE's default route as Envoy serves it ({} if none)."""
    dump = admin.get_json(f"{admin_url}/config_dump", client, {"resource": "dynamic_route_configs"})
    prefix = f"{fqdn(service)}:"
    for entry in dump.get("configs", []):
        config = entry.get("route_config") or {}
        if not str(config.get("name", "")).startswith(prefix):
            continue
        routes = [r for vhost in config.get("virtual_hosts", []) for r in vhost.get("routes", [])]
        if not routes or "route" not in routes[-1]:
            return {}
        action = routes[-1]["route"]
        if "cluster" in action:
            return {_name(action["cluster"], service): 100}
        clusters = (action.get("weighted_clusters") or {}).get("clusters", [])
        return {_name(c["name"], service): int(c["weight"]) for c in clusters if int(c["weight"])}
    return {}


def subsets(
    admin_url: str, service: str, client: httpx.Client, names: list[str] | None = None
) -> list[str]:
    """The subsets of SERVICE that Envoy has a cluster for, sorted; with NAMES (the
    backendRef Services of an HTTPRoute), those of NAMES that Envoy has a cluster for."""
    data = admin.get_json(f"{admin_url}/clusters", client, {"format": "json"})
    clusters = [c.get("name", "") for c in data.get("cluster_statuses", [])]
    found = {target_name(c, service) for c in clusters}
    if names is not None:
        return sorted(n for n in names if n in found)
    own = f"|{fqdn(service)}"
    return sorted(
        {c.split("|")[2] for c in clusters if c.startswith("outbound|") and c.endswith(own)} - {""}
    )


def without_zeros(weights: dict[str, int]) -> dict[str, int]:
    return {s: w for s, w in weights.items() if w}


def wait_served(
    admin_url: str, service: str, weights: dict[str, int], client: httpx.Client, timeout: float
) -> bool:
    """Until Envoy serves WEIGHTS for SERVICE's default route (False after TIMEOUT)."""
    want = without_zeros(weights)
    deadline = time.monotonic() + timeout
    while served_weights(admin_url, service, client) != want:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)  # Envoy picks the route file up on its own watch
    return True
