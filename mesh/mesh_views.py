"""What a running local mesh shows its callers (`mesh status`, the tests, the demos, the
benches): its URLs, its replicas and processes, their logs, the generation in force, and
what its state file says.

Read-only: LocalMesh (mesh/runner.py) owns the parts these read, so a view never
changes the mesh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh.loop.generation import Generation
from mesh.loop.istiod import ControlPlane
from mesh.loop.kubelet import Kubelet
from mesh.loop.pods import Pod
from mesh.loop.workloads import Listeners
from mesh.manifests import Manifests
from mesh.processes import LOCAL_HOST, Child
from mesh.state import MeshState
from mesh.translate.gateways import tls_servers

if TYPE_CHECKING:
    from mesh.sidecars import SidecarSetup


class MeshViews:
    """The read-only views of LocalMesh, over the parts it wires up."""

    control: ControlPlane
    kubelet: Kubelet
    _directory: Path
    gateway_port: int
    gateway_ports: dict[int, int]
    admin_port: int
    listeners: Listeners
    traces_port: int | None
    sidecar_setup: SidecarSetup | None

    @property
    def generation(self) -> Generation | None:
        """The config generation in force (None before start)."""
        return self.control.generation

    @property
    def directory(self) -> Path:
        """The manifest directory in force (a `mesh apply DIR` changes it)."""
        g = self.control.generation
        return g.directory if g is not None else self._directory

    def config_status(self) -> dict[str, Any]:
        return self.control.status()

    @property
    def manifests(self) -> Manifests | None:
        return self.generation.manifests if self.generation else None

    @property
    def gateway_urls(self) -> dict[int, str]:
        """Gateway server port -> its local URL: https where the servers terminate TLS."""
        tls = {s.number for s in tls_servers(self.manifests)} if self.manifests else set()
        return {
            n: f"{'https' if n in tls else 'http'}://{LOCAL_HOST}:{p}"
            for n, p in self.gateway_ports.items()
        }

    @property
    def gateway_url(self) -> str:
        """The first plain-HTTP gateway port's URL (the first port's, when all are TLS)."""
        urls = list(self.gateway_urls.values())
        plain = [u for u in urls if u.startswith("http:")]
        return (plain or urls or [f"http://{LOCAL_HOST}:{self.gateway_port}"])[0]

    @property
    def admin_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.admin_port}"

    def service_url(self, service: str, port: int | None = None) -> str:
        keys = [k for k in self.listeners if k[0] == service and (port is None or k[1] == port)]
        if not keys:
            raise KeyError(service)
        return f"http://{LOCAL_HOST}:{self.listeners[keys[0]]}"

    @property
    def traces_url(self) -> str | None:
        """The trace receiver (`mesh traces` reads it), or None when traces are off."""
        return None if self.traces_port is None else f"http://{LOCAL_HOST}:{self.traces_port}"

    @property
    def workloads(self) -> list[Pod]:
        """Every replica (one Pod each), terminating ones included, in start order."""
        with self.kubelet.cond:
            return list(self.kubelet.pods)

    @property
    def children(self) -> list[Child]:
        """Every running process: replicas, then Envoy(s) and the trace receiver."""
        return self.kubelet.children()

    def pod(self, instance: str) -> Pod:
        pod = self.kubelet.find(instance)
        if pod is None:
            raise KeyError(instance)
        return pod

    def instance_url(self, instance: str) -> str:
        return self.pod(instance).url

    def logs(self, name: str = "envoy") -> list[str]:
        for child in self.children:
            if child.name == name:
                return list(child.tail)
        raise KeyError(name)

    def sidecar_admin_urls(self) -> dict[str, str]:
        """Each sidecar's Envoy admin by process name (`mesh proxy-config PROXY`)."""
        sidecars = self.sidecar_setup.sidecars if self.sidecar_setup else []
        return {s.name: s.admin_url for s in sidecars}

    def dead(self) -> list[Child]:
        """Processes that exited and wait for their restart."""
        return [c for c in self.children if not c.alive]

    def _state(self) -> MeshState:
        """What the state file says of this mesh (`mesh status` reads it)."""
        return MeshState(
            pid=os.getpid(),
            manifests=str(self.directory),
            admin_url=self.admin_url,
            gateway_urls=list(self.gateway_urls.values()),
            service_urls={
                f"{s}:{n}": f"http://{LOCAL_HOST}:{p}" for (s, n), p in self.listeners.items()
            },
            traces_url=self.traces_url,
            config=self.config_status(),
            stats_urls=self.envoy_admin_urls(),
            proxy_admin_urls=self.sidecar_admin_urls(),
            **self.kubelet.state(),
        )
