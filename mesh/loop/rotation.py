"""Envoy's view of a replica: is it listed (and healthy) in every cluster that selects it?

The endpoints publisher writes a file; the waits here read each Envoy's admin
`/clusters` until the replica is in rotation everywhere (a new replica may take traffic,
an old one may be stopped) or gone everywhere (no new request will reach it). A host is
matched by its port: during a surge two replicas share a name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from mesh import admin
from mesh.loop.endpoints import Endpoints
from mesh.loop.kubelet import Kubelet
from mesh.loop.local_http import local_client
from mesh.loop.pods import Pod

POLL_S = 0.05  # Envoy reloads an EDS file within milliseconds


def hosts_on_port(
    client: httpx.Client, admin_url: str, clusters: set[str], port: int
) -> list[list[bool]]:
    """Per cluster of CLUSTERS that ADMIN_URL's Envoy has: the health of its hosts on PORT."""
    view = client.get(f"{admin_url}/clusters?format=json").json()
    out = []
    for c in view.get("cluster_statuses", []):
        if c.get("name") not in clusters:
            continue
        hosts = [
            admin._host(h)
            for h in c.get("host_statuses", [])
            if ((h.get("address") or {}).get("socket_address") or {}).get("port_value") == port
        ]
        out.append([h.healthy for h in hosts])
    return out


def wait_rotation(
    admin_urls: list[str],
    clusters: set[str],
    port: int,
    listed: bool,
    timeout: float,
    gone: Callable[[], bool] = lambda: False,
) -> bool:
    """LISTED: until every Envoy lists the host on PORT, healthy, in each of CLUSTERS;
    else until none lists it. False after TIMEOUT, or as soon as GONE() (the replica
    died: waiting longer is pointless)."""
    if not clusters:
        return True  # behind no Service: no Envoy sends it anything
    deadline = time.monotonic() + timeout
    with local_client(timeout=5.0) as client:
        while True:
            seen: list[bool] = []
            try:
                for url in admin_urls:
                    for health in hosts_on_port(client, url, clusters, port):
                        seen.append(bool(health) and all(health) if listed else not health)
            except (httpx.HTTPError, ValueError):
                seen = [False]  # an Envoy restarting: ask again
            if seen and all(seen):
                return True
            if gone() or time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)


class Rotation:
    """Envoy's view of one mesh's replicas: ADMIN_URLS() are every Envoy's admin (the
    shared one, then each sidecar's); the clusters of a replica come from ENDPOINTS."""

    def __init__(
        self,
        kubelet: Kubelet,
        endpoints: Endpoints,
        admin_urls: Callable[[], list[str]],
        timeout: float,
    ) -> None:
        self.kubelet = kubelet
        self.endpoints = endpoints
        self.admin_urls = admin_urls
        self.timeout = timeout

    def available(self, pod: Pod, timeout: float) -> bool:
        """Until POD is ready and every Envoy lists it, healthy (False after TIMEOUT)."""
        deadline = time.monotonic() + timeout
        if not self.kubelet.wait_for(lambda: pod.ready or pod.terminating, timeout):
            return False
        clusters = set(self.endpoints.clusters_of(pod.deployment))
        left = max(0.1, deadline - time.monotonic())
        return wait_rotation(
            self.admin_urls(), clusters, pod.endpoint_port, True, left, gone=lambda: not pod.ready
        )

    def drained(self, pod: Pod) -> None:
        """Until no Envoy lists POD (then no new request reaches it)."""
        clusters = set(self.endpoints.clusters_of(pod.deployment))
        wait_rotation(self.admin_urls(), clusters, pod.endpoint_port, False, self.timeout)
