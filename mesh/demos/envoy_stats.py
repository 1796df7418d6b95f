"""What the demos read of Envoy's admin API: cluster stats and host health, loopback only."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from mesh.load.options import OptionError, is_loopback_host

PENDING_OVERFLOW = "upstream_rq_pending_overflow"
REMAINING_PENDING = "circuit_breakers.default.remaining_pending"
EJECTIONS_ACTIVE = "outlier_detection.ejections_active"
UPSTREAM_RQ_TOTAL = "upstream_rq_total"


def loopback(url: str) -> str:
    host = httpx.URL(url).host
    if not is_loopback_host(host):
        raise OptionError(f"refusing non-loopback URL {url!r}: demos run on the local mesh")
    return url.rstrip("/")


def parse_cluster_stats(text: str, suffixes: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """``cluster.<name>.<suffix>: N`` lines -> ``{name: {suffix: N}}``.

    Cluster names contain dots and bars (``outbound|5000|v1|backend-service.default...``),
    so a stat is matched by its known suffix, never by splitting on dots.
    """
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(": ")
        if not sep or not name.startswith("cluster."):
            continue
        for suffix in suffixes:
            if name.endswith("." + suffix):
                cluster = name[len("cluster.") : -len(suffix) - 1]
                try:
                    out.setdefault(cluster, {})[suffix] = int(value.strip())
                except ValueError:
                    pass  # a histogram summary line, not a counter or gauge
    return out


def parse_host_health(text: str) -> dict[str, dict[str, str]]:
    """Envoy ``/clusters`` text -> ``{cluster: {host:port: health_flags}}``."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "health_flags":
            out.setdefault(parts[0], {})[parts[1]] = parts[3]
    return out


class EnvoyAdmin:
    """The few admin reads the demos need, from ``http://127.0.0.1:<admin port>``."""

    def __init__(self, admin_url: str, timeout: float = 5.0) -> None:
        self.url = loopback(admin_url)
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> str:
        r = httpx.get(self.url + path, params=params, timeout=self.timeout, trust_env=False)
        r.raise_for_status()
        return r.text

    def stats(self, suffixes: tuple[str, ...], cluster_filter: str) -> dict[str, dict[str, int]]:
        """Cluster stats ending in one of ``suffixes`` for clusters whose name has the filter."""
        pattern = "(" + "|".join(s.replace(".", r"\.") for s in suffixes) + ")$"
        found = parse_cluster_stats(self._get("/stats", {"filter": pattern}), suffixes)
        return {c: v for c, v in found.items() if cluster_filter in c}

    def host_health(self, cluster_filter: str) -> dict[str, dict[str, str]]:
        found = parse_host_health(self._get("/clusters"))
        return {c: v for c, v in found.items() if cluster_filter in c}
