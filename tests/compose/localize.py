"""Map the compose network onto loopback, to run the compose services as local processes.

Docker gives every service a host name (its name and aliases) and every container its
own port space. Locally each (host, container port) becomes 127.0.0.1:<free port>:
the same rewrite is applied to the services' environment (URLs such as BACKEND_URL,
HOST, PORT), to their named volumes (a directory each) and to the Envoy config
(listener, admin and endpoint addresses). Nothing else changes: same entry points,
same variables, same routes and clusters.
"""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.compose.project import Project, Service, socket_addresses
from tests.support.procs import VENV_BIN, free_port

LOOPBACK = "127.0.0.1"
WILDCARD = ("0.0.0.0", "::")
# scheme://[user@]host:port - user@ as in TASKS_DB=postgresql://taskmesh@postgres:5432/tasks
_URL_HOST_PORT = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*://(?:[^@/]+@)?)(?P<host>[^/:@]+):(?P<port>\d+)"
)


@dataclass
class Network:
    """(compose host name, container port) -> local port, and named volume -> directory."""

    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)

    def add(self, service: Service, container_port: int) -> int:
        """Give SERVICE's CONTAINER_PORT one local port, under every name it answers to."""
        existing = [
            self.ports[(n, container_port)]
            for n in service.names
            if (n, container_port) in self.ports
        ]
        port = existing[0] if existing else free_port()
        for name in service.names:
            self.ports[(name, container_port)] = port
        return port

    @property
    def hosts(self) -> set[str]:
        return {host for host, _ in self.ports}

    def local(self, host: str, port: int) -> int:
        try:
            return self.ports[(host, port)]
        except KeyError:
            raise KeyError(f"nothing on the compose network answers at {host}:{port}") from None


def plan_network(
    project: Project, envoy_service: str, envoy: dict[str, Any], root: Path
) -> Network:
    """Local ports for every app service's PORT and every address Envoy listens on."""
    net = Network()
    for service in project.services.values():
        if service.container_port is not None:
            net.add(service, service.container_port)
        for volume in service.spec.get("volumes") or []:
            if volume["type"] == "volume":
                net.volumes.setdefault(volume["source"], root / "volumes" / volume["source"])
    gateway = project.services[envoy_service]
    for _, addr in socket_addresses(envoy):
        if addr["address"] in WILDCARD:
            net.add(gateway, int(addr["port_value"]))
    for directory in net.volumes.values():
        directory.mkdir(parents=True, exist_ok=True)
    return net


def local_env(service: Service, net: Network) -> dict[str, str]:
    """SERVICE's container environment with host names, ports and volume paths mapped."""
    env = dict(service.env)
    mounts = {
        v["target"]: net.volumes[v["source"]]
        for v in service.spec.get("volumes") or []
        if v["type"] == "volume"
    }
    for key, value in env.items():
        for target, directory in mounts.items():
            if value == target or value.startswith(target.rstrip("/") + "/"):
                value = str(directory) + value[len(target.rstrip("/")) :]
        match = _URL_HOST_PORT.match(value)
        if match and match["host"] in net.hosts:
            port = net.local(match["host"], int(match["port"]))
            value = f"{match['scheme']}{LOOPBACK}:{port}{value[match.end() :]}"
        env[key] = value
    if service.container_port is not None:
        env["PORT"] = str(net.local(service.name, service.container_port))
    if "HOST" in env:
        env["HOST"] = LOOPBACK
    return env


def local_envoy_config(
    envoy: dict[str, Any], envoy_service: Service, net: Network
) -> dict[str, Any]:
    """The Envoy config with every listener, admin and endpoint address on loopback."""
    local = copy.deepcopy(envoy)
    for _, addr in socket_addresses(local):
        host = envoy_service.name if addr["address"] in WILDCARD else addr["address"]
        addr["port_value"] = net.local(host, int(addr["port_value"]))
        addr["address"] = LOOPBACK
    return local


def local_argv(argv: list[str]) -> list[str]:
    """An image command, run from this venv: the console script or interpreter of the same name."""
    head, *rest = argv
    if head in ("python", "python3"):
        return [sys.executable, *rest]
    script = VENV_BIN / head
    if not script.exists():
        raise FileNotFoundError(f"no {head} in {VENV_BIN}: run `make install`")
    return [str(script), *rest]
