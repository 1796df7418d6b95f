"""Which sidecars run, with their identity, mTLS mode and ports.

One sidecar per workload instance (`backend-v1-0` gets `backend-v1-0.sidecar`). Its
identity is the Deployment's service account (`spec.template.spec.serviceAccountName`,
`default` when unset), as istiod signs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mesh.ca import workload_identity
from mesh.manifests import Deployment, Manifests
from mesh.sidecars.peer import Mode, mtls_mode

GATEWAY_IDENTITY = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
SIDECAR_SUFFIX = ".sidecar"


def service_account(deployment: Deployment) -> str:
    pod = ((deployment.raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    name = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
    return str(name)


@dataclass(frozen=True)
class Sidecar:
    """The sidecar of one workload instance."""

    instance: str
    deployment: Deployment
    identity: str
    mode: Mode
    app_port: int
    inbound_port: int
    admin_port: int
    # (service name, service port) -> loopback port of this sidecar's outbound listener
    outbound: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Process (and log file) name."""
        return f"{self.instance}{SIDECAR_SUFFIX}"

    @property
    def container_port(self) -> int:
        """The pod port Istio would name the inbound cluster after."""
        for container in self.deployment.containers:
            for port in container.ports:
                return port.container_port
        return self.app_port

    @property
    def inbound_cluster(self) -> str:
        return f"inbound|{self.container_port}||"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def outbound_port(self, service: str, port: int | None = None) -> int:
        for (name, number), local in self.outbound.items():
            if name == service and (port is None or number == port):
                return local
        raise KeyError(service)


def plan_sidecars(
    manifests: Manifests, app_ports: dict[str, int], new_port: Callable[[], int]
) -> list[Sidecar]:
    """A sidecar for every replica of every Deployment, each port from NEW_PORT."""
    service_ports = [(s.name, p.port) for s in manifests.services for p in s.ports]
    sidecars = []
    for d in manifests.deployments:
        identity = workload_identity(d.namespace, service_account(d))
        mode = mtls_mode(manifests, d)
        for instance in d.instance_names():
            sidecars.append(
                Sidecar(
                    instance=instance,
                    deployment=d,
                    identity=identity,
                    mode=mode,
                    app_port=app_ports[instance],
                    inbound_port=new_port(),
                    admin_port=new_port(),
                    outbound={key: new_port() for key in service_ports},
                )
            )
    return sidecars
