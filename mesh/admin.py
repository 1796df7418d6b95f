"""Read Envoy's admin API: cluster hosts with health, and the counters `mesh status` shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from mesh.errors import StateError

TIMEOUT_S = 5.0  # the admin answers at once or is down

# counters per cluster shown by `mesh status` (Envoy cluster_stats.rst)
CLUSTER_STATS = (
    "upstream_rq_total",
    "upstream_rq_5xx",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "outlier_detection.ejections_active",
    "outlier_detection.ejections_enforced_total",
)


@dataclass
class HostStatus:
    address: str
    hostname: str
    ejected: bool
    healthy: bool
    rq_total: int


@dataclass
class ClusterStatus:
    name: str
    hosts: list[HostStatus] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def request(
    method: str,
    url: str,
    client: httpx.Client | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to an Envoy admin URL (with CLIENT, or a client of its own): the one
    caller of Envoy's admin, so every command says alike which Envoy failed and how
    (StateError: no answer or an error status)."""
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_S)
    try:
        response = client.request(method, url, params=params)
        response.raise_for_status()
        return response
    except httpx.HTTPStatusError as exc:
        raise StateError(f"Envoy admin {url} answered {exc.response.status_code}") from exc
    except httpx.TransportError as exc:
        raise StateError(f"Envoy admin {url} does not answer ({type(exc).__name__})") from exc
    finally:
        if own:
            client.close()


def get_json(
    url: str, client: httpx.Client | None = None, params: dict[str, str] | None = None
) -> Any:
    """GET an Envoy admin URL as JSON (StateError also when it is not JSON)."""
    response = request("GET", url, client, params)
    try:
        return response.json()
    except ValueError as exc:
        raise StateError(f"Envoy admin {url}: not JSON ({exc})") from exc


def stats(admin_url: str, prefix: str = "", client: httpx.Client | None = None) -> dict[str, int]:
    """Counters and gauges whose name starts with PREFIX (e.g. `cluster.outbound|5000|v1|...`)."""
    data = get_json(f"{admin_url}/stats?format=json", client)
    out: dict[str, int] = {}
    for entry in data.get("stats", []):
        name, value = entry.get("name"), entry.get("value")
        if isinstance(name, str) and isinstance(value, int) and name.startswith(prefix):
            out[name] = value
    return out


def cluster_stat(
    admin_url: str, cluster: str, stat: str, client: httpx.Client | None = None
) -> int:
    """One counter of one cluster (0 when Envoy has not created it yet)."""
    key = f"cluster.{cluster}.{stat}"
    return stats(admin_url, key, client).get(key, 0)


def _host(entry: dict[str, Any]) -> HostStatus:
    sock = (entry.get("address") or {}).get("socket_address") or {}
    health = entry.get("health_status") or {}
    counters = {s.get("name"): int(s.get("value", 0)) for s in entry.get("stats", [])}
    ejected = bool(health.get("failed_outlier_check"))
    flags = ("failed_active_health_check", "failed_outlier_check", "pending_dynamic_removal")
    return HostStatus(
        address=f"{sock.get('address')}:{sock.get('port_value')}",
        hostname=entry.get("hostname") or "",
        ejected=ejected,
        healthy=not any(health.get(f) for f in flags)
        and health.get("eds_health_status", "HEALTHY") == "HEALTHY",
        rq_total=counters.get("rq_total", 0),
    )


def clusters(admin_url: str, prefix: str = "outbound|") -> list[ClusterStatus]:
    """Every cluster named PREFIX... with its hosts and CLUSTER_STATS."""
    with httpx.Client(timeout=TIMEOUT_S) as client:
        data = get_json(f"{admin_url}/clusters?format=json", client)
        counters = stats(admin_url, "cluster.", client)
    out = []
    for entry in data.get("cluster_statuses", []):
        name = entry.get("name", "")
        if not name.startswith(prefix):
            continue
        status = ClusterStatus(name, [_host(h) for h in entry.get("host_statuses", [])])
        status.stats = {s: counters.get(f"cluster.{name}.{s}", 0) for s in CLUSTER_STATS}
        out.append(status)
    return out
