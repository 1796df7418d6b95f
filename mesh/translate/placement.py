"""Where the translated config runs: endpoint addresses, listener ports, admin.

Two targets:
- `local`: every replica is a process on 127.0.0.1 with its own port (STATIC clusters),
  Envoy listens on 127.0.0.1 (gateway 8080, each Service port on its own number).
- `compose`: every replica is a container named `COMPOSE_SERVICE_NAME` (resolved by Docker's
  DNS, STRICT_DNS clusters) listening on its container port; Envoy listens on 0.0.0.0 and
  is reachable as each mesh Service's name (network aliases `backend-service`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mesh.errors import TranslationError
from mesh.manifests import Deployment, Manifests

Target = Literal["local", "compose"]
TARGETS: tuple[Target, ...] = ("local", "compose")

# docker-compose service (and container host name) of replica N of Deployment D.
# The same as the local instance name, so logs and `mesh status` read alike everywhere.
COMPOSE_SERVICE_NAME = "{deployment}-{index}"
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_ADMIN_PORT = 15000


@dataclass(frozen=True)
class Placement:
    target: Target
    listen_address: str
    admin_address: str
    admin_port: int
    # gateway server port number (e.g. 80) -> port Envoy listens on (e.g. 8080)
    gateway_ports: dict[int, int]
    # (service name, service port) -> port Envoy listens on for that Service
    service_ports: dict[tuple[str, int], int]
    # instance name ("backend-v1-0") -> (host, port); port None means "the container port"
    instances: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    # (host, port) of the trace receiver Envoy reports spans to; None: no tracing
    traces: tuple[str, int] | None = None
    # the labels and namespace of the workload whose outbound listeners these are (a
    # sidecar's); None: the shared Envoy's, which every app calls (match.sourceLabels)
    caller: tuple[dict[str, str], str] | None = None

    @property
    def dns(self) -> bool:
        return self.target == "compose"

    def endpoint(self, instance: str, container_port: int) -> tuple[str, int]:
        host, port = self.instances[instance]
        return host, port if port is not None else container_port

    def gateway_port(self, number: int) -> int:
        if number not in self.gateway_ports:
            raise TranslationError(f"no local port for gateway port {number}")
        return self.gateway_ports[number]


def _gateway_numbers(manifests: Manifests) -> list[int]:
    numbers: list[int] = []
    for gw in manifests.gateways:
        for server in gw.spec.get("servers") or []:
            number = (server.get("port") or {}).get("number") if isinstance(server, dict) else None
            if isinstance(number, int) and number not in numbers:
                numbers.append(number)
    return numbers


def default_gateway_ports(
    manifests: Manifests, first: int = DEFAULT_GATEWAY_PORT, keep: dict[int, int] | None = None
) -> dict[int, int]:
    """Gateway server ports in order of appearance -> FIRST, FIRST+1, ...; a number KEEP
    maps (the running mesh's) keeps its port, so a later generation that reorders or adds
    servers moves no listener: a new number takes the lowest free port from FIRST."""
    keep = keep or {}
    numbers = _gateway_numbers(manifests)
    out = {n: keep[n] for n in numbers if n in keep}
    taken = set(keep.values())
    for n in numbers:
        if n not in out:
            out[n] = next(p for p in range(first, 65536) if p not in taken)
            taken.add(out[n])
    return {n: out[n] for n in numbers}


def default_service_ports(manifests: Manifests) -> dict[tuple[str, int], int]:
    """Each Service port listens on its own number (backend-service:5000 -> 5000).

    In a cluster every Service has its own address; on one loopback address a second
    Service on the same number (backend-v1:5000 beside backend-service:5000, as the
    Gateway API's per-version Services) gets the next number no Service port uses."""
    numbers = {p.port for s in manifests.services for p in s.ports}
    out: dict[tuple[str, int], int] = {}
    for s in manifests.services:
        for p in s.ports:
            number = p.port
            if number in out.values():
                number = next(n for n in range(p.port + 1, 65536) if n not in numbers)
                numbers.add(number)
            out[(s.name, p.port)] = number
    return out


def local_placement(
    manifests: Manifests,
    instance_ports: dict[str, int],
    gateway_port: int = DEFAULT_GATEWAY_PORT,
    service_ports: dict[str, int] | None = None,
    admin_port: int = DEFAULT_ADMIN_PORT,
    traces_port: int | None = None,
    running_gateway_ports: dict[int, int] | None = None,
    caller: tuple[dict[str, str], str] | None = None,
) -> Placement:
    """Placement for processes on loopback. SERVICE_PORTS maps a Service name to the port
    of its outbound listener (only for one-port Services); the others keep their number.
    TRACES_PORT: the local trace receiver's port (Envoy traces only when it is given).
    RUNNING_GATEWAY_PORTS: the running mesh's gateway ports, kept (default_gateway_ports).
    CALLER: the workload the Service listeners serve, when one does (Placement.caller)."""
    ports = default_service_ports(manifests)
    for name, port in (service_ports or {}).items():
        keys = [k for k in ports if k[0] == name]
        if len(keys) != 1:
            raise TranslationError(f"--service-port {name}: no one-port Service named {name}")
        ports[keys[0]] = port
    missing = [
        i for d in manifests.deployments for i in d.instance_names() if i not in instance_ports
    ]
    if missing:
        raise TranslationError(f"no local port for instance {missing[0]}")
    return Placement(
        target="local",
        listen_address="127.0.0.1",
        admin_address="127.0.0.1",
        admin_port=admin_port,
        gateway_ports=default_gateway_ports(manifests, gateway_port, running_gateway_ports),
        service_ports=ports,
        instances={name: ("127.0.0.1", port) for name, port in instance_ports.items()},
        traces=("127.0.0.1", traces_port) if traces_port is not None else None,
        caller=caller,
    )


def compose_instance_name(deployment: Deployment, index: int) -> str:
    return COMPOSE_SERVICE_NAME.format(deployment=deployment.name, index=index)


def compose_placement(manifests: Manifests) -> Placement:
    """Placement for docker compose: containers by name, Envoy on 0.0.0.0, admin 15000."""
    instances: dict[str, tuple[str, int | None]] = {}
    for d in manifests.deployments:
        for i, name in enumerate(d.instance_names()):
            instances[name] = (compose_instance_name(d, i), None)
    return Placement(
        target="compose",
        listen_address="0.0.0.0",
        admin_address="0.0.0.0",
        admin_port=DEFAULT_ADMIN_PORT,
        gateway_ports=default_gateway_ports(manifests),
        service_ports=default_service_ports(manifests),
        instances=instances,
    )


def sequential_instance_ports(manifests: Manifests, first: int = 20000) -> dict[str, int]:
    """FIRST, FIRST+1, ... for the replicas in manifest order: stable ports for printing a
    local config (`mesh up` picks free ports instead)."""
    names = [i for d in manifests.deployments for i in d.instance_names()]
    return {name: first + n for n, name in enumerate(names)}
