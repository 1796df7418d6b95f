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
STAND_IN_PORT = 1  # never dialled: the endpoints come over EDS from the replicas


def service_account(deployment: Deployment) -> str:
    pod = ((deployment.raw.get("spec") or {}).get("template") or {}).get("spec") or {}
    name = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
    return str(name)


def deployment_identity(deployment: Deployment) -> str:
    """The identity a new replica of DEPLOYMENT is issued (`cluster.local/ns/N/sa/SA`)."""
    return workload_identity(deployment.namespace, service_account(deployment))


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


def plan_sidecar(
    manifests: Manifests,
    d: Deployment,
    instance: str,
    app_port: int,
    new_port: Callable[[], int],
) -> Sidecar:
    """The sidecar of replica INSTANCE of D (its app on APP_PORT), each port from NEW_PORT."""
    return Sidecar(
        instance=instance,
        deployment=d,
        identity=deployment_identity(d),
        mode=mtls_mode(manifests, d),
        app_port=app_port,
        inbound_port=new_port(),
        admin_port=new_port(),
        outbound={(s.name, p.port): new_port() for s in manifests.services for p in s.ports},
    )


def stand_in(manifests: Manifests, d: Deployment, instance: str) -> Sidecar:
    """What the others know of a replica of D whose sidecar has not started yet: its
    identity and mTLS mode (how to call it); its address comes over EDS when it runs."""
    return Sidecar(
        instance=instance,
        deployment=d,
        identity=deployment_identity(d),
        mode=mtls_mode(manifests, d),
        app_port=0,
        inbound_port=STAND_IN_PORT,
        admin_port=0,
    )


def plan_sidecars(
    manifests: Manifests, app_ports: dict[str, int], new_port: Callable[[], int]
) -> list[Sidecar]:
    """A sidecar for every replica of every Deployment, each port from NEW_PORT."""
    return [
        plan_sidecar(manifests, d, instance, app_ports[instance], new_port)
        for d in manifests.deployments
        for instance in d.instance_names()
    ]
