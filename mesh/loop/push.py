"""Push a generation to a running Envoy over its xDS files, make-before-break.

istiod pushes CDS before LDS/RDS, and drops a cluster only after no route names it;
Envoy keeps serving the old config until the new one is in force, and in-flight
requests finish on the old one. Locally, per generation N:

1. EDS files of new clusters (the caller's endpoints publisher has written them);
2. CDS with the new clusters *and* the old ones the routes may still name; wait for it;
3. every changed route table (RDS), then the listeners (LDS) if they changed; wait;
4. CDS without the clusters nothing names any more; wait.

"Wait" reads Envoy's own admin (`*.version_text` stats and `/config_dump`), so a push
returns once the running Envoy serves generation N, not once files are written. A file
Envoy rejects (its `update_rejected` counter moves) fails the push: the caller writes
the previous generation's files back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from mesh.loop.endpoints import write_atomically
from mesh.loop.local_http import local_client
from mesh.translate.xds import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    XdsConfig,
    rds_configs,
    response,
)

PUSH_TIMEOUT_S = 30.0
POLL_S = 0.02


class PushError(Exception):
    """Envoy rejected a file, or did not take it within the timeout."""


@dataclass
class Written:
    """What is on disk now (what a restarted Envoy would load)."""

    clusters: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # "cds"/"lds"/route name


class Pusher:
    """Writes one Envoy's xDS files and waits for that Envoy to serve them."""

    def __init__(self, admin_url: str, timeout: float = PUSH_TIMEOUT_S) -> None:
        self.admin_url = admin_url
        self.timeout = timeout
        self.written = Written()

    def first(self, xds: XdsConfig, version: str) -> None:
        """The files Envoy starts from (nothing runs yet: no wait)."""
        self._write_cds(xds, xds.clusters, version)
        for name, route in xds.routes.items():
            self._write_route(xds, name, route, version)
        self._write_lds(xds, xds.listeners, version)

    def push(self, xds: XdsConfig, version: str, envoy_up: bool = True) -> None:
        """Make XDS the running config, as version VERSION (see the module doc).
        ENVOY_UP False: only write (a restarting Envoy reads the files when it starts)."""
        with local_client(timeout=5.0) as client:
            wait = self._waiter(client) if envoy_up else None
            new_names = {c["name"] for c in xds.clusters}
            kept = [c for c in self.written.clusters if c["name"] not in new_names]
            if xds.clusters != self.written.clusters:
                union = xds.clusters + kept
                step = f"{version}-prepare" if kept else version
                self._write_cds(xds, union, step)
                if wait:
                    wait("cds", step)
            routes = [n for n, r in xds.routes.items() if self.written.routes.get(n) != r]
            for name in routes:
                self._write_route(xds, name, xds.routes[name], version)
            lds = xds.listeners != self.written.listeners
            if lds:
                self._write_lds(xds, xds.listeners, version)
            if wait:
                if lds:
                    wait("lds", version)
                served = set(self._route_names(xds.listeners))  # a table no listener names
                for name in routes:  # is never loaded: nothing to wait for
                    if name in served:
                        wait(f"rds:{name}", version)
            if kept:
                self._write_cds(xds, xds.clusters, version)
                if wait:
                    wait("cds", version)

    @staticmethod
    def _route_names(listeners: list[dict[str, Any]]) -> list[str]:
        return [rds["route_config_name"] for ln in listeners for rds in rds_configs(ln)]

    # -- files
    def _write_cds(self, xds: XdsConfig, clusters: list[dict[str, Any]], version: str) -> None:
        write_atomically(xds.cds_path, response(clusters, CLUSTER_TYPE, version))
        self.written.clusters = clusters
        self.written.versions["cds"] = version

    def _write_lds(self, xds: XdsConfig, listeners: list[dict[str, Any]], version: str) -> None:
        write_atomically(xds.lds_path, response(listeners, LISTENER_TYPE, version))
        self.written.listeners = listeners
        self.written.versions["lds"] = version

    def _write_route(self, xds: XdsConfig, name: str, route: dict[str, Any], version: str) -> None:
        write_atomically(xds.route_path(name), response([route], ROUTE_TYPE, version))
        self.written.routes[name] = route
        self.written.versions[f"rds:{name}"] = version

    # -- waiting on Envoy
    def _waiter(self, client: httpx.Client):  # type: ignore[no-untyped-def]
        rejected = self._rejected(client)

        def wait(what: str, version: str) -> None:
            deadline = time.monotonic() + self.timeout
            while True:
                if self._serves(client, what, version):
                    return
                now_rejected = self._rejected(client)
                if now_rejected.get(what, 0) > rejected.get(what, 0):
                    raise PushError(f"Envoy rejected the {what} update of version {version}")
                if time.monotonic() > deadline:
                    raise PushError(
                        f"Envoy did not apply the {what} update of version {version} "
                        f"within {self.timeout:g}s"
                    )
                time.sleep(POLL_S)

        return wait

    def _stats(self, client: httpx.Client, flt: str) -> dict[str, Any]:
        data = client.get(f"{self.admin_url}/stats", params={"format": "json", "filter": flt})
        data.raise_for_status()
        return {s["name"]: s["value"] for s in data.json().get("stats", []) if "name" in s}

    def _rejected(self, client: httpx.Client) -> dict[str, int]:
        stats = self._stats(
            client, r"^(cluster_manager\.cds|listener_manager\.lds)\.update_rejected$"
        )
        return {
            "cds": int(stats.get("cluster_manager.cds.update_rejected", 0)),
            "lds": int(stats.get("listener_manager.lds.update_rejected", 0)),
        }

    def _serves(self, client: httpx.Client, what: str, version: str) -> bool:
        if what in ("cds", "lds"):
            key = {"cds": "cluster_manager.cds", "lds": "listener_manager.lds"}[what]
            stats = self._stats(client, rf"^{key.replace('.', '[.]')}[.]version_text$")
            if stats.get(f"{key}.version_text") != version:
                return False
            return not self._warming(client, what)
        name = what.split(":", 1)[1]
        dump = client.get(
            f"{self.admin_url}/config_dump",
            params={"resource": "dynamic_route_configs", "mask": "version_info,route_config.name"},
        ).json()
        for entry in dump.get("configs", []):
            if (entry.get("route_config") or {}).get("name") == name:
                return entry.get("version_info") == version
        return False

    def _warming(self, client: httpx.Client, what: str) -> bool:
        if what == "cds":
            dump = client.get(
                f"{self.admin_url}/config_dump",
                params={"resource": "dynamic_warming_clusters", "mask": "version_info"},
            ).json()
            return bool(dump.get("configs"))
        dump = client.get(
            f"{self.admin_url}/config_dump",
            params={"resource": "dynamic_listeners", "mask": "name,warming_state.version_info"},
        ).json()
        return any("warming_state" in e for e in dump.get("configs", []))
