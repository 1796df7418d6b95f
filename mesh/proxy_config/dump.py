"""What a live Envoy's admin API says it runs: /config_dump and /clusters?format=json.

As istioctl's configdump.Wrapper, a kind's entries are the dynamic ones (xDS: the shared
Envoy reads LDS/CDS/RDS from files, mesh/translate/xds.py) followed by the static ones
(the bootstrap's), so the same command reads either kind of Envoy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh import admin

ADMIN_DUMP = "type.googleapis.com/envoy.admin.v3."


@dataclass
class Dump:
    """The config of one Envoy, by kind, each entry a raw Envoy resource (dict)."""

    clusters: list[dict[str, Any]]
    listeners: list[dict[str, Any]]
    routes: list[dict[str, Any]]


def section(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """The config of KIND (`ClustersConfigDump`, ...) in a /config_dump body, or {}."""
    for config in data.get("configs") or []:
        if config.get("@type") == ADMIN_DUMP + kind:
            return dict(config)
    return {}


def active_listeners(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The active listener of every dynamic listener in a /config_dump body."""
    entries = section(data, "ListenersConfigDump").get("dynamic_listeners") or []
    return [found for e in entries if (found := (e.get("active_state") or {}).get("listener"))]


def _resource(entry: Any) -> dict[str, Any]:
    """The resource itself, without the Any's @type (istioctl prints the message)."""
    return {k: v for k, v in (entry or {}).items() if k != "@type"}


def parse(data: dict[str, Any]) -> Dump:
    """A /config_dump body as a Dump: dynamic entries first, then static ones, as
    retrieveSorted{Cluster,Listener,Route}Slice collect them."""
    cds = section(data, "ClustersConfigDump")
    lds = section(data, "ListenersConfigDump")
    rds = section(data, "RoutesConfigDump")
    clusters = [
        _resource(e.get("cluster"))
        for e in (cds.get("dynamic_active_clusters") or []) + (cds.get("static_clusters") or [])
        if e.get("cluster")
    ]
    listeners = [_resource(listener) for listener in active_listeners(data)] + [
        _resource(e.get("listener")) for e in lds.get("static_listeners") or [] if e.get("listener")
    ]
    routes = [
        _resource(e.get("route_config"))
        for e in (rds.get("dynamic_route_configs") or []) + (rds.get("static_route_configs") or [])
        if e.get("route_config")
    ]
    return Dump(clusters, listeners, routes)


def fetch(admin_url: str) -> Dump:
    return parse(admin.get_json(f"{admin_url}/config_dump"))


def cluster_statuses(admin_url: str) -> list[dict[str, Any]]:
    """/clusters?format=json's cluster_statuses: every cluster's hosts with health, what
    `istioctl proxy-config endpoints` reads (it asks the same admin path)."""
    data = admin.get_json(f"{admin_url}/clusters?format=json")
    return list(data.get("cluster_statuses") or [])


def bootstrap(admin_url: str) -> dict[str, Any]:
    """The BootstrapConfigDump (`bootstrap`, `last_updated`), what istioctl's
    PrintBootstrapDump prints."""
    return bootstrap_of(admin.get_json(f"{admin_url}/config_dump"))


def bootstrap_of(data: dict[str, Any]) -> dict[str, Any]:
    """The BootstrapConfigDump of a /config_dump body DATA."""
    return _resource(section(data, "BootstrapConfigDump"))


def envoy_version(bootstrap_dump: dict[str, Any]) -> str:
    """configdump.go getUserAgentVersionInfo: `1.40.0-dev/Clean/RELEASE/BoringSSL`, from
    the node's user_agent_build_version Envoy fills in."""
    node = (bootstrap_dump.get("bootstrap") or {}).get("node") or {}
    build = node.get("user_agent_build_version") or {}
    version = build.get("version") or {}
    text = "{}.{}.{}".format(
        *(int(version.get(k, 0)) for k in ("major_number", "minor_number", "patch"))
    )
    metadata = build.get("metadata") or {}
    for key, sep in (("build.label", "-"), ("revision.status", "/"), ("build.type", "/"),
                     ("ssl.version", "/")):  # fmt: skip
        if key in metadata:
            text += f"{sep}{metadata[key]}"
    return text
