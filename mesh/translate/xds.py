"""A translated bootstrap as file-based xDS, the way istiod serves it (a pure function).

`translate()` gives one static bootstrap (what `mesh envoy-config` prints and compose
runs). A running local mesh instead gives Envoy a small bootstrap whose listeners (LDS),
clusters (CDS) and route tables (RDS) come from files, so a new generation reaches the
running Envoy without a restart: Envoy reloads a file when a new one is moved over it
(`path_config_source`), as it applies an istiod push.

    xds = split(bootstrap, directory)      # XdsConfig: bootstrap, listeners, clusters, routes
    xds.bootstrap                          # node, admin, runtime, dynamic_resources
    xds.files(version)                     # path -> DiscoveryResponse, per resource kind

Every HTTP connection manager's inline `route_config` becomes `rds` from its own file
(istiod's routes come over RDS too), so a changed weight rewrites one route file and no
listener is drained. The outbound clusters' endpoints are already on EDS files
(mesh/translate/eds.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
LDS_FILE = "lds.json"
CDS_FILE = "cds.json"
RDS_DIR = "rds"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _source(path: Path) -> dict[str, Any]:
    return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}


def response(resources: list[dict[str, Any]], type_url: str, version: str) -> dict[str, Any]:
    """A DiscoveryResponse as Envoy reads it from a file."""
    return {"version_info": version, "resources": [{"@type": type_url, **r} for r in resources]}


@dataclass
class XdsConfig:
    """One generation's Envoy config, split into the bootstrap and its xDS resources."""

    directory: Path
    bootstrap: dict[str, Any]
    listeners: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    routes: dict[str, dict[str, Any]]  # route config name -> RouteConfiguration

    @property
    def lds_path(self) -> Path:
        return self.directory / LDS_FILE

    @property
    def cds_path(self) -> Path:
        return self.directory / CDS_FILE

    def route_path(self, name: str) -> Path:
        return route_file(self.directory, name)

    def cluster_names(self) -> list[str]:
        return [c["name"] for c in self.clusters]


def route_file(directory: Path, name: str) -> Path:
    return directory / RDS_DIR / f"{_UNSAFE.sub('_', name)}.json"


def split(bootstrap: dict[str, Any], directory: Path) -> XdsConfig:
    """BOOTSTRAP (static, as translated; EDS already applied) as LDS/CDS/RDS files of
    DIRECTORY. BOOTSTRAP is not changed."""
    directory = directory.resolve()
    static = bootstrap.get("static_resources") or {}
    listeners = copy.deepcopy(static.get("listeners") or [])
    clusters = copy.deepcopy(static.get("clusters") or [])
    routes: dict[str, dict[str, Any]] = {}
    for listener in listeners:
        for config in filter_configs(listener):
            route_config = config.pop("route_config", None)
            if route_config is None:
                continue
            name = route_config["name"]
            if name in routes and routes[name] != route_config:
                raise ValueError(f"two different route configs named {name!r}")
            routes[name] = route_config
            config["rds"] = {
                "route_config_name": name,
                "config_source": _source(route_file(directory, name)),
            }
    dynamic = {k: v for k, v in bootstrap.items() if k != "static_resources"}
    dynamic["dynamic_resources"] = {
        "lds_config": _source(directory / LDS_FILE),
        "cds_config": _source(directory / CDS_FILE),
    }
    return XdsConfig(directory, dynamic, listeners, clusters, routes)


def filter_configs(listener: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The typed_config of every network filter of LISTENER, chain by chain (a dict that
    is the listener's own: a caller may change it)."""
    for chain in listener.get("filter_chains") or []:
        for flt in chain.get("filters") or []:
            config = flt.get("typed_config")
            if isinstance(config, dict):
                yield config


def rds_configs(listener: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The `rds` (route_config_name, config_source) of each connection manager of LISTENER
    that loads its route table by RDS."""
    for config in filter_configs(listener):
        if config.get("rds"):
            yield config["rds"]
