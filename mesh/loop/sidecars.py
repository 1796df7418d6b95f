"""Sidecars that follow the local mesh's generations, as istiod pushes to every proxy.

Each sidecar Envoy (`mesh up --sidecars`) starts from a small bootstrap whose listeners,
clusters and routes come from its own xDS files (mesh/translate/xds.py), as the shared
Envoy does; a generation is pushed to each one make-before-break (mesh/loop/push.py),
so a changed VirtualService, DestinationRule, AuthorizationPolicy, Gateway, Telemetry
or PeerAuthentication (a sidecar's mTLS mode, and how the others call it) reaches the
sidecars without a restart.

A Deployment may change too: a replica the rollout starts gets its own sidecar first
(`add`: ports, certificate, config of the generation in force), and a replica stopped
for good takes its sidecar with it (`remove`), as the containers of one pod
(mesh/loop/sidecar_pods.py). A Service that keeps its ports is followed too (its
selector or targetPort moves clusters and endpoints). A Deployment's new service account
rolls its replicas: while it rolls, every caller trusts the old identity and the new one
for that Service's endpoints, and once it has rolled the control plane pushes again
without the old (`accounts_changed`), as istiod does a full push when the service
accounts of a Service's endpoints change. What a generation may not change while
sidecars run: the set of Service ports (each sidecar's outbound listeners and each app's
env, fixed when its replica started), and kinds the local mesh does not run; such a
generation is refused, saying so, and the one in force keeps serving.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh import envoy
from mesh.errors import MeshError
from mesh.loop.generation import Finding, Refused, changes, finding_from_error
from mesh.loop.push import Pusher, PushError
from mesh.manifests import Manifests
from mesh.sidecars import CONFIG_DIR, Sidecar, SidecarSetup, validate_all
from mesh.sidecars.peer import check_peer_authentications
from mesh.sidecars.plan import service_account
from mesh.sidecars.rbac import check_authorization_policies
from mesh.translate.eds import use_eds
from mesh.translate.tcp import refuse_with_sidecars
from mesh.translate.xds import XdsConfig, split

#: Kinds whose change only rewrites Envoy config: pushed to the running sidecars. A
#: Secret is one: the gateway's certificates (a replica reads a secretKeyRef when it
#: starts, as a pod does: a changed Secret restarts nothing, in a cluster or here). A
#: Deployment's replicas bring their own sidecars; a ServiceAccount object sets nothing
#: locally (an identity is the Deployment's serviceAccountName).
LIVE_KINDS = frozenset(
    {"VirtualService", "DestinationRule", "Gateway", "AuthorizationPolicy",
     "PeerAuthentication", "Telemetry", "HTTPRoute", "Secret", "Deployment",
     "ServiceAccount"}
)  # fmt: skip
EDS_DIR = "eds"
XDS_DIR = "sidecars/xds"
GENERATIONS_DIR = "sidecars/generations"


@dataclass
class SidecarConfigs:
    """One generation's config of every sidecar: its xDS files and their EDS files."""

    xds: dict[str, XdsConfig]  # sidecar name -> its resources
    eds_files: dict[Path, dict[str, Any]]
    sidecars: list[Sidecar]  # with the mTLS mode of the generation's PeerAuthentications


def service_ports(manifests: Manifests) -> list[tuple[str, int]]:
    """Every (Service, port): each sidecar has an outbound listener for each."""
    return sorted((s.name, p.port) for s in manifests.services for p in s.ports)


def workload_changes(previous: Manifests, manifests: Manifests) -> list[str]:
    """`Service/backend-service changed`, ...: the changes sidecars cannot follow live. A
    Service that keeps its ports (a selector, a targetPort, a label) only moves clusters
    and endpoints, which are pushed: it is followed."""
    moved = [c for c in changes(previous, manifests) if c.split("/", 1)[0] not in LIVE_KINDS]
    if service_ports(previous) == service_ports(manifests):
        moved = [c for c in moved if not c.startswith("Service/")]
    return moved


def accounts_changed(previous: Manifests, manifests: Manifests) -> list[str]:
    """The Deployments of both whose serviceAccountName differs: once they have rolled,
    the callers should stop trusting the old identity (a push without it)."""
    accounts = {d.name: service_account(d) for d in previous.deployments}
    return [
        d.name
        for d in manifests.deployments
        if accounts.get(d.name, service_account(d)) != service_account(d)
    ]


class LiveSidecars:
    """The sidecars of one local mesh, on xDS files, and the generation they serve."""

    def __init__(self, setup: SidecarSetup, state_dir: Path, alive: Callable[[str], bool]):
        """ALIVE(name): whether that sidecar's Envoy runs now (a push to one that is
        restarting only writes its files: it reads them when it starts)."""
        self.setup = setup
        self.state_dir = state_dir
        self.alive = alive
        self.pushers = {s.name: Pusher(s.admin_url) for s in setup.sidecars}
        self.current: SidecarConfigs | None = None
        self._lock = threading.Lock()  # replicas start and stop on several threads

    def first(self) -> dict[Path, dict[str, Any]]:
        """Generation 1: each sidecar's static config (written by `prepare`, validated) as
        xDS files, and in its place the bootstrap its Envoy starts from. Returns the EDS
        files (path -> full assignment) for the endpoints publisher."""
        configs = {
            s.name: yaml.safe_load(self.setup.configs[s.name].read_text())
            for s in self.setup.sidecars
        }
        built = self._split(configs, list(self.setup.sidecars))
        for s in self.setup.sidecars:
            xds = built.xds[s.name]
            self.pushers[s.name].first(xds, "1")
            self.setup.configs[s.name].write_text(yaml.safe_dump(xds.bootstrap, sort_keys=False))
        self.current = built
        return built.eds_files

    def build(self, previous: Manifests, manifests: Manifests, number: int) -> SidecarConfigs:
        """Generation NUMBER's config of every sidecar, validated by Envoy; Refused when
        MANIFESTS change a workload (see the module doc) or a policy the sidecars
        cannot enforce."""
        moved = workload_changes(previous, manifests)
        if moved:
            more = f" (+{len(moved) - 1} more)" if len(moved) > 1 else ""
            message = (
                f"{moved[0]}{more}: a mesh started with --sidecars applies changes to "
                f"{', '.join(sorted(LIVE_KINDS))} live, and a Service's that keeps its "
                "ports (each sidecar has a listener per Service port); restart "
                "`mesh up --sidecars` to run this one"
            )
            raise Refused("sidecars", [Finding("", "", "", "", message)])
        try:
            check_peer_authentications(manifests)
            check_authorization_policies(manifests)
            refuse_with_sidecars(manifests)
            setup = self.setup.replanned(manifests)
            configs = {s.name: setup.static_config(manifests, s) for s in setup.sidecars}
        except MeshError as exc:
            raise Refused("translate", [finding_from_error(exc)]) from exc
        where = self.state_dir / GENERATIONS_DIR / str(number)
        where.mkdir(parents=True, exist_ok=True)
        paths = []
        for s in self.setup.sidecars:
            path = where / f"{s.instance}.yaml"
            path.write_text(yaml.safe_dump(configs[s.name], sort_keys=False))
            paths.append(path)
        try:
            validate_all(paths, envoy.envoy_binary())
        except MeshError as exc:
            raise Refused("validate", [Finding("", "", "", "", str(exc))]) from exc
        finally:
            _keep_last(self.state_dir / GENERATIONS_DIR, number)
        return self._split(configs, setup.sidecars)

    def push(self, configs: SidecarConfigs, version: str) -> None:
        """Make CONFIGS every sidecar's running config (PushError: one refused it, or did
        not take it in time; call `restore` then)."""
        for s in self.setup.sidecars:
            self.pushers[s.name].push(configs.xds[s.name], version, envoy_up=self.alive(s.name))
        self.current = configs
        self.setup.sidecars[:] = configs.sidecars  # in place: the runner shares the list

    def add(self, manifests: Manifests, sidecar: Sidecar, version: str) -> None:
        """SIDECAR, of a replica about to start: its certificate, and its config for
        MANIFESTS (the generation in force, VERSION) validated by Envoy and written as its
        xDS files and bootstrap (`setup.configs`); the caller starts its Envoy. MeshError
        (nothing kept) if Envoy refuses the config."""
        with self._lock:
            setup = self.setup
            setup.certs[sidecar.name] = setup.ca.issue(sidecar.identity, sidecar.instance)
            setup.sidecars.append(sidecar)
            try:
                config = setup.static_config(manifests, sidecar)
                path = self.state_dir / CONFIG_DIR / f"{sidecar.instance}.yaml"
                path.write_text(yaml.safe_dump(config, sort_keys=False))
                envoy.validate(path, envoy.envoy_binary())
            except MeshError:
                self._forget(sidecar.name)
                raise
            eds = use_eds(config, self.state_dir / EDS_DIR / sidecar.name)
            xds = split(config, self.state_dir / XDS_DIR / sidecar.instance)
            self.pushers[sidecar.name] = Pusher(sidecar.admin_url)
            self.pushers[sidecar.name].first(xds, version)
            path.write_text(yaml.safe_dump(xds.bootstrap, sort_keys=False))
            setup.configs[sidecar.name] = path
            if self.current is not None:
                self.current.xds[sidecar.name] = xds
                self.current.eds_files.update(eds)
                self.current.sidecars.append(sidecar)

    def remove(self, name: str) -> bool:
        """Forget sidecar NAME (its replica was stopped for good): False if unknown."""
        with self._lock:
            return self._forget(name)

    def instances(self) -> set[str]:
        """The replicas that have a sidecar now (a name a new replica may not take)."""
        with self._lock:
            return {s.instance for s in self.setup.sidecars}

    def _forget(self, name: str) -> bool:
        setup = self.setup
        if not any(s.name == name for s in setup.sidecars):
            return False
        setup.sidecars[:] = [s for s in setup.sidecars if s.name != name]
        setup.configs.pop(name, None)
        setup.certs.pop(name, None)
        self.pushers.pop(name, None)
        if self.current is not None:
            own = (self.state_dir / EDS_DIR / name).resolve()
            self.current.xds.pop(name, None)
            self.current.eds_files = {
                p: a for p, a in self.current.eds_files.items() if p.parent != own
            }
            self.current.sidecars = [s for s in self.current.sidecars if s.name != name]
        return True

    def restore(self, version: str) -> None:
        """Push the generation in force again (after a failed push), as far as it goes."""
        if self.current is None:
            return
        for s in self.setup.sidecars:
            with contextlib.suppress(PushError):
                self.pushers[s.name].push(
                    self.current.xds[s.name], version, envoy_up=self.alive(s.name)
                )

    def _split(self, configs: dict[str, dict[str, Any]], sidecars: list[Sidecar]) -> SidecarConfigs:
        eds: dict[Path, dict[str, Any]] = {}
        xds = {}
        for s in self.setup.sidecars:
            config = configs[s.name]
            eds.update(use_eds(config, self.state_dir / EDS_DIR / s.name))
            xds[s.name] = split(config, self.state_dir / XDS_DIR / s.instance)
        return SidecarConfigs(xds, eds, sidecars)


def _keep_last(where: Path, number: int, keep: int = 4) -> None:
    """Remove the validated configs of generations older than the last KEEP."""
    for old in where.iterdir() if where.is_dir() else []:
        if old.name.isdigit() and int(old.name) < number - keep:
            for f in old.glob("*.yaml"):
                f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                old.rmdir()
