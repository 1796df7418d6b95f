"""The local endpoints controller: publish each Service's ready replicas as EDS files.

In a cluster the endpoints controller keeps the ready, not terminating pods that a
Service (or a DestinationRule subset) selects, and istiod pushes them to every Envoy
over EDS. Locally the translation says which Deployments each outbound cluster selects
(the hostnames of its full assignment), and `Endpoints.sync(pods)` writes, for every
cluster, the published replicas of those Deployments at their own ports. A file is
rewritten only when its endpoints change, atomically (a temp file in the same
directory, then os.replace: Envoy reloads on the move and never reads half a file).

    endpoints = Endpoints()
    endpoints.set_clusters(files, deployment_of)   # a generation: file -> full assignment
    endpoints.sync(pods)                            # after any readiness change
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.translate.eds import ASSIGNMENT_TYPE

# Envoy's common_lb_config.update_merge_window default, which istiod keeps: a health
# change (an outlier ejection) within this long of the previous cluster update (an EDS
# change) is held back until the window ends, so the ejected host keeps getting requests.
ENVOY_MERGE_WINDOW_S = 1.0


@dataclass(frozen=True)
class Endpoint:
    """One published replica: its name (the endpoint hostname), Deployment and port."""

    name: str
    deployment: str
    port: int


@dataclass
class _Cluster:
    name: str
    assignment: dict[str, Any]  # the translated one, endpoints emptied
    entries: dict[str, dict[str, Any]]  # deployment -> an lb_endpoint to copy per replica


class Endpoints:
    """The EDS files of one or more Envoys, following the replicas' readiness."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[Path, _Cluster] = {}
        self._written: dict[Path, list[Endpoint]] = {}
        self._pods: list[Endpoint] = []
        self._version = 0
        self.last_write = time.monotonic()

    def set_clusters(
        self, files: dict[Path, dict[str, Any]], deployment_of: dict[str, str]
    ) -> None:
        """A generation's clusters: FILES maps an EDS file to its full assignment (every
        replica, as translated), DEPLOYMENT_OF an instance name to its Deployment. Files
        of clusters no longer in FILES are left in place (a cluster still in Envoy's
        config keeps its last endpoints until the generation removes it)."""
        clusters = {}
        for path, assignment in files.items():
            entries: dict[str, dict[str, Any]] = {}
            for group in assignment.get("endpoints", []):
                for entry in group.get("lb_endpoints", []):
                    host = entry["endpoint"].get("hostname", "")
                    deployment = deployment_of.get(host)
                    if deployment is not None and deployment not in entries:
                        entries[deployment] = entry
            emptied = copy.deepcopy(assignment)
            for group in emptied.get("endpoints", []):
                group["lb_endpoints"] = []
            clusters[path] = _Cluster(assignment["cluster_name"], emptied, entries)
        with self._lock:
            self._clusters = clusters
            self._written = {p: w for p, w in self._written.items() if p in clusters}
            self._publish()

    def sync(self, pods: Iterable[Endpoint]) -> bool:
        """Publish exactly PODS (the ready, not terminating replicas); True if a file
        changed."""
        with self._lock:
            self._pods = sorted(pods, key=lambda e: (e.deployment, e.name, e.port))
            return self._publish()

    def clusters_of(self, deployment: str) -> list[str]:
        """Names of the clusters that select DEPLOYMENT's replicas."""
        with self._lock:
            return sorted(c.name for c in self._clusters.values() if deployment in c.entries)

    def published(self, path: Path) -> list[Endpoint]:
        with self._lock:
            return list(self._written.get(path, []))

    def settled_in(self) -> float:
        """Seconds until Envoy applies a health change (an ejection) at once again: its
        merge window after the last EDS change (0 when it has passed)."""
        with self._lock:
            return max(0.0, self.last_write + ENVOY_MERGE_WINDOW_S - time.monotonic())

    # -- files
    def _publish(self) -> bool:
        """Write every file whose endpoints changed. Caller holds the lock."""
        changed = False
        for path, cluster in self._clusters.items():
            members = [p for p in self._pods if p.deployment in cluster.entries]
            if path in self._written and self._written[path] == members:
                continue
            self._version += 1
            write_atomically(path, self._response(cluster, members))
            self._written[path] = members
            changed = True
        if changed:
            self.last_write = time.monotonic()
        return changed

    def _response(self, cluster: _Cluster, members: list[Endpoint]) -> dict[str, Any]:
        assignment = copy.deepcopy(cluster.assignment)
        entries = []
        for pod in members:
            entry = copy.deepcopy(cluster.entries[pod.deployment])
            entry["endpoint"]["hostname"] = pod.name
            entry["endpoint"]["address"]["socket_address"]["port_value"] = pod.port
            entries.append(entry)
        groups = assignment.get("endpoints") or [{"lb_endpoints": []}]
        groups[0]["lb_endpoints"] = entries
        assignment["endpoints"] = groups
        resource = {"@type": ASSIGNMENT_TYPE, **assignment}
        return {"version_info": str(self._version), "resources": [resource]}


def write_atomically(path: Path, content: dict[str, Any]) -> None:
    """Write a temp file in PATH's directory, then move it over PATH (Envoy reacts to the
    move; it must never read a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(content, out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
