"""Is each Envoy running what the control loop last gave it? istioctl proxy-status's
question (istioctl/pkg/writer/pilot/status.go), answered the local mesh's way.

istiod compares, per Envoy and xDS type, the nonce it last sent with the one the Envoy
last acknowledged: SYNCED, STALE (sent, not acknowledged: in flight or rejected) or
NOT SENT. Here the control loop "sends" by writing xDS files (mesh/loop/push.py), so
the sent version of a resource is its file's `version_info`, and the acknowledged one
is what that Envoy reports: `cluster_manager.cds.version_text`,
`listener_manager.lds.version_text`, each route table's `version_info` in
`/config_dump`, and each EDS cluster's `cluster.NAME.version_text`. The files are found
from the Envoy itself: its bootstrap names the CDS and LDS files, its listeners the RDS
files, its clusters the EDS files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mesh import admin
from mesh.proxy_config.dump import active_listeners, bootstrap_of, envoy_version, section
from mesh.translate.xds import rds_configs

CDS, LDS, EDS, RDS, ECDS = "CDS", "LDS", "EDS", "RDS", "ECDS"
#: the columns of `istioctl proxy-status -v 1`: the known xDS types in the order of their
#: type URLs (cluster, core.TypedExtensionConfig, endpoint, listener, route)
VERBOSE_TYPES = (CDS, ECDS, EDS, LDS, RDS)
#: the order istioctl lists subscribed types in: CDS, LDS, EDS, RDS first
CORE_ORDER = (CDS, LDS, EDS, RDS)
SYNCED, STALE, NOT_SENT, IGNORED = "SYNCED", "STALE", "NOT SENT", "IGNORED"


@dataclass
class TypeSync:
    """One xDS type of one Envoy: resource name -> (sent, acknowledged) versions, and
    when the last of its files was written (istiod's LastUpdated: its last push)."""

    versions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    updated: float | None = None  # wall-clock seconds

    @property
    def status(self) -> str:
        if not self.versions or all(sent is None for sent, _ in self.versions.values()):
            return NOT_SENT
        if all(sent == acked for sent, acked in self.versions.values()):
            return SYNCED
        return STALE

    def sent(self, name: str, path: str, acked: str | None) -> None:
        """Resource NAME was sent as the xDS file at PATH; the Envoy runs version ACKED."""
        self.versions[name] = (file_version(path), acked)
        try:
            written = Path(path).stat().st_mtime
        except OSError:
            return
        self.updated = max(self.updated or written, written)

    def cell(self, now: float) -> str:
        """istioctl's cell: `SYNCED (2m5s)`, the age of the last push; NOT SENT bare."""
        status = self.status
        if status == NOT_SENT or self.updated is None:
            return status
        return f"{status} ({human_duration(now - self.updated)})"


def human_duration(seconds: float) -> str:
    """An age as kubectl and istioctl print one (k8s.io/apimachinery/pkg/util/duration
    HumanDuration): `45s`, `2m5s`, `12m`, `3h20m`, `9h`, `2d4h`, `30d`, `2y10d`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    for unit, size, coarse, detailed, inner, inner_size in (
        ("m", 60, 3 * 60, 10, "s", 1),
        ("h", 3600, 48, 8, "m", 60),
        ("d", 86400, 2 * 365, 8, "h", 3600),
    ):
        value = s // size
        if value < detailed:
            rest = (s % size) // inner_size
            return f"{value}{unit}{rest}{inner}" if rest else f"{value}{unit}"
        if value < coarse:
            return f"{value}{unit}"
    years, days = s // (365 * 86400), (s // 86400) % 365
    if years < 8 and days:
        return f"{years}y{days}d"
    return f"{years}y"


def read_xds(path: str) -> dict[str, Any]:
    """The xDS file at PATH, `{version_info, resources}` ({} when there is none)."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def file_version(path: str) -> str | None:
    """The `version_info` of the xDS file at PATH; None when there is none (not sent)."""
    version = read_xds(path).get("version_info")
    return None if version is None else str(version)


def source_path(source: dict[str, Any] | None) -> str | None:
    """The file of a `path_config_source` (None for any other source)."""
    return ((source or {}).get("path_config_source") or {}).get("path")


def bootstrap_files(data: dict[str, Any]) -> dict[str, str | None]:
    """The CDS and LDS files (`cds_config`, `lds_config`) the bootstrap in /config_dump
    body DATA names."""
    boot = section(data, "BootstrapConfigDump").get("bootstrap") or {}
    dynamic = boot.get("dynamic_resources") or {}
    return {key: source_path(dynamic.get(key)) for key in ("cds_config", "lds_config")}


def route_files(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(route table, its RDS file) for every RDS of the active listeners in DATA."""
    found = []
    for listener in active_listeners(data):
        for rds in rds_configs(listener):
            path = source_path(rds.get("config_source"))
            if path:
                found.append((str(rds["route_config_name"]), path))
    return found


def sync_of(data: dict[str, Any], version_texts: dict[str, str]) -> dict[str, TypeSync]:
    """Each xDS type's versions in one Envoy's `/config_dump` body DATA and its `version_text`
    stats VERSION_TEXTS (stat name -> value); a type it does not subscribe to is absent."""
    out: dict[str, TypeSync] = {}
    files = bootstrap_files(data)
    for kind, key, stat in (
        (CDS, "cds_config", "cluster_manager.cds.version_text"),
        (LDS, "lds_config", "listener_manager.lds.version_text"),
    ):
        path = files[key]
        if path:
            out.setdefault(kind, TypeSync()).sent(kind, path, version_texts.get(stat))
    for entry in section(data, "ClustersConfigDump").get("dynamic_active_clusters") or []:
        cluster = entry.get("cluster") or {}
        path = source_path((cluster.get("eds_cluster_config") or {}).get("eds_config"))
        if path:
            name = cluster.get("name", "")
            acked = version_texts.get(f"cluster.{name}.version_text")
            out.setdefault(EDS, TypeSync()).sent(name, path, acked)
    served = {
        (e.get("route_config") or {}).get("name"): e.get("version_info")
        for e in section(data, "RoutesConfigDump").get("dynamic_route_configs") or []
    }
    for name, path in route_files(data):
        out.setdefault(RDS, TypeSync()).sent(name, path, served.get(name))
    return out


@dataclass
class ProxySync:
    types: dict[str, TypeSync]
    version: str  # the proxy's release (istioctl: the Istio version), Envoy's here


def read_sync(admin_url: str, client: httpx.Client | None = None) -> ProxySync:
    """SYNC_OF the live Envoy of ADMIN_URL, and its version (StateError: no answer)."""
    data = admin.get_json(f"{admin_url}/config_dump", client)
    params = {"format": "json", "filter": r"version_text$"}
    stats = admin.get_json(f"{admin_url}/stats", client, params)
    texts = {s["name"]: str(s["value"]) for s in stats.get("stats", []) if "name" in s}
    version = envoy_version(bootstrap_of(data)).split("/", 1)[0]
    return ProxySync(sync_of(data, texts), version)


def subscribed(types: dict[str, TypeSync]) -> str:
    """istioctl's SUBSCRIBED TYPES cell: `4 (CDS,LDS,EDS,RDS)`, or `0`."""
    names = [t for t in CORE_ORDER if t in types] + sorted(set(types) - set(CORE_ORDER))
    return f"{len(names)} ({','.join(names)})" if names else "0"


def verbose_cells(types: dict[str, TypeSync], now: float) -> list[str]:
    """The per-type cells of `-v 1` (`SYNCED (5s)`), IGNORED for a type the Envoy does
    not subscribe to; NOW: the wall-clock time the ages count to."""
    return [types[t].cell(now) if t in types else IGNORED for t in VERBOSE_TYPES]
