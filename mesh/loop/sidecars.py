"""Sidecars that follow the local mesh's generations, as istiod pushes to every proxy.

Each sidecar Envoy (`mesh up --sidecars`) starts from a small bootstrap whose listeners,
clusters and routes come from its own xDS files (mesh/translate/xds.py), as the shared
Envoy does; a generation is pushed to each one make-before-break (mesh/loop/push.py),
so a changed VirtualService, DestinationRule, AuthorizationPolicy, Gateway, Telemetry
or PeerAuthentication (a sidecar's mTLS mode, and how the others call it) reaches the
sidecars without a restart: each generation's sidecar config is built from all of its
objects.

What a sidecar fixed when it started follows too:
- its replica: one the rollout starts gets its own sidecar first (`add`: ports,
  certificate, config of the generation in force), and one stopped for good takes its
  sidecar with it (`remove`), as the containers of one pod (mesh/loop/sidecar_pods.py);
- its outbound listeners: a new Service port gets one in every running sidecar (a
  loopback port of its own; a port taken away loses it), as istiod adds the listener to
  every proxy. An app reaches a Service port through the URL its env names (rewritten
  to its sidecar's listener when its replica starts), so an app that should call the
  new port needs its Deployment's env changed, which rolls it;
- its identity: a Deployment's new serviceAccountName rolls its replicas, and while it
  rolls every caller trusts the old identity and the new one for that Service's
  endpoints; once a Deployment's replicas no longer hold an identity (rolled away) the
  control plane pushes again without it (`identities`, in mesh/loop/istiod.py), as
  istiod does a full push when the service accounts of a Service's endpoints change.

A generation the sidecars cannot enforce (a policy field they do not run, a TCP
Service) or that Envoy refuses is refused, saying so, and the one in force keeps serving.
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
from mesh.loop.generation import Finding, Refused, finding_from_error
from mesh.loop.push import Pusher, PushError
from mesh.manifests import Manifests
from mesh.sidecars import CONFIG_DIR, Sidecar, SidecarSetup, validate_all
from mesh.sidecars.peer import check_peer_authentications
from mesh.sidecars.rbac import check_authorization_policies
from mesh.translate.eds import use_eds
from mesh.translate.tcp import refuse_with_sidecars
from mesh.translate.xds import XdsConfig, split

EDS_DIR = "eds"
XDS_DIR = "sidecars/xds"
GENERATIONS_DIR = "sidecars/generations"


@dataclass
class SidecarConfigs:
    """One generation's config of every sidecar: its xDS files and their EDS files."""

    xds: dict[str, XdsConfig]  # sidecar name -> its resources
    eds_files: dict[Path, dict[str, Any]]
    sidecars: list[Sidecar]  # with the mTLS mode of the generation's PeerAuthentications


class LiveSidecars:
    """The sidecars of one local mesh, on xDS files, and the generation they serve."""

    def __init__(
        self,
        setup: SidecarSetup,
        state_dir: Path,
        alive: Callable[[str], bool],
        new_port: Callable[[], int],
    ):
        """ALIVE(name): whether that sidecar's Envoy runs now (a push to one that is
        restarting only writes its files: it reads them when it starts); NEW_PORT: a free
        loopback port, for the listener of a new Service port."""
        self.setup = setup
        self.state_dir = state_dir
        self.alive = alive
        self.new_port = new_port
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

    def build(self, manifests: Manifests, number: int) -> SidecarConfigs:
        """Generation NUMBER's config of every sidecar, validated by Envoy; Refused when
        MANIFESTS set a policy the sidecars cannot enforce or Envoy refuses it."""
        try:
            check_peer_authentications(manifests)
            check_authorization_policies(manifests)
            refuse_with_sidecars(manifests)
            setup = self.setup.replanned(manifests, self.new_port)
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

    def identities(self) -> set[tuple[str, str]]:
        """(Deployment, identity) of every sidecar now: the identities callers trust."""
        with self._lock:
            return {(s.deployment.name, s.identity) for s in self.setup.sidecars}

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
