"""Run a manifest directory on loopback and keep it running: the local mesh's control loop.

    with LocalMesh("k8s", gateway_port=8080) as mesh:  # then mesh.gateway_url, ...
        mesh.apply(); mesh.restart("backend-v1")  # `kubectl apply -k`, `rollout restart`

The three loops of a cluster, each played by one part of mesh/loop/:
- the kubelet (`Kubelet`) runs every replica, probes it and restarts it when it dies or
  fails its liveness probe; Envoy and the trace receiver are restarted too;
- the endpoints controller (`Endpoints`) publishes the ready replicas as EDS files;
- istiod (`build` + `Pusher`) turns the directory into numbered generations and pushes
  each to the running Envoy over its xDS files, without a restart; a generation that
  fails a step is refused and the last good one keeps serving;
and the Deployment controller (`Rollout`) turns a generation's Deployments into replicas:
scale, rolling update by strategy, removal.

Start-up (generation 1, mesh/loop/startup.py): read, translate, check the fixed ports
(mesh/loop/ports.py), validate, start every replica and Envoy, wait until all are ready
and in Envoy's rotation; a failure stops all and raises RunnerError with the failing
child's last lines; after that, the kubelet restarts. Views: mesh/mesh_views.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from mesh import envoy
from mesh.errors import RunnerError
from mesh.loop.api import EventsApi
from mesh.loop.endpoints import Endpoints
from mesh.loop.events import EVENTS_FILE, Events
from mesh.loop.generation import Generation, warm_up_checks
from mesh.loop.istiod import ControlPlane
from mesh.loop.kubelet import Kubelet, SystemProcess
from mesh.loop.pods import Pod
from mesh.loop.ports import (
    check_fixed_ports,
    check_new_gateway_ports,
    check_new_listeners,
    reserve_given_ports,
)
from mesh.loop.push import Pusher
from mesh.loop.rollout import Rollout, StuckRollout, strategy
from mesh.loop.rotation import Rotation
from mesh.loop.sidecar_pods import SidecarPods
from mesh.loop.sidecars import LiveSidecars
from mesh.loop.startup import (
    start_sidecars,
    startup_url,
    stop_leftovers,
    wait_first_start,
)
from mesh.loop.watch import Watcher
from mesh.loop.weights import route_weights
from mesh.loop.workloads import Blueprint, Listeners
from mesh.manifests import Manifests
from mesh.mesh_views import MeshViews
from mesh.processes import LOCAL_HOST, Echo, free_port
from mesh.sidecars import SidecarSetup, prepare, secure_gateway
from mesh.sidecars import validate_all as validate_sidecars
from mesh.state import (
    DEFAULT_STATE_DIR,
    remove_state,
)
from mesh.traces.launch import trace_env, traces_command
from mesh.translate import Placement, local_placement
from mesh.translate.istio_gateways import INGRESS
from mesh.translate.placement import DEFAULT_ADMIN_PORT, DEFAULT_GATEWAY_PORT

READY_TIMEOUT_S = 30.0
# the env var that tells a workload where the local mesh's events are (the frontend's
# page marks restarts and config changes with them; unset in a cluster)
EVENTS_URL_ENV = "MESH_EVENTS_URL"
PLACEHOLDER_PORT = 1  # endpoints come from the replicas, never from the translation


class LocalMesh(MeshViews):
    """The manifests of DIRECTORY running on loopback behind real Envoy, kept running."""

    def __init__(
        self,
        directory: str | Path = "k8s",
        *,
        gateway_port: int = DEFAULT_GATEWAY_PORT,
        admin_port: int = DEFAULT_ADMIN_PORT,
        service_ports: dict[str, int] | None = None,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        echo: Echo | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        traces_port: int | None = None,
        sidecars: bool = False,
        watch: bool = False,
    ) -> None:
        """TRACES_PORT: run the trace receiver there and trace everything (None: no traces).
        SIDECARS: one Envoy per instance too (mTLS, RBAC; mesh/sidecars), the shared one
        then plays the ingress gateway with its own identity. WATCH: apply the directory
        again whenever one of its files changes (`mesh up` does)."""
        self._directory = Path(directory)
        self.gateway_port = gateway_port
        self.admin_port = admin_port
        self.service_port_overrides = dict(service_ports or {})
        self.state_dir = Path(state_dir)
        self.echo = echo
        self.ready_timeout = ready_timeout
        self.traces_port = traces_port
        reserve_given_ports(gateway_port, admin_port, traces_port, self.service_port_overrides)
        self.sidecars = sidecars
        self.watch = watch
        self.sidecar_setup: SidecarSetup | None = None
        self.config_path = self.state_dir / "envoy.yaml"
        self.listeners: Listeners = {}
        self.gateway_ports: dict[int, int] = {}
        self.events = Events()  # in memory until start() owns the state dir
        self.endpoints = Endpoints()
        self.kubelet = Kubelet(
            self.endpoints, self.events, self.state_dir / "logs", echo, self._write_state,
            on_deleted=lambda pod: self.sidecar_pods and self.sidecar_pods.deleted(pod),
        )  # fmt: skip
        self.sidecar_pods: SidecarPods | None = None  # with sidecars, once started
        self.pusher = Pusher(self.admin_url)
        self.rotation = Rotation(self.kubelet, self.endpoints, self.envoy_admin_urls, ready_timeout)
        self.rollout = Rollout(
            self.kubelet,
            self.events,
            self._new_pod,
            self.rotation.available,
            self.rotation.drained,
            ready_timeout,
            name_taken=lambda name: bool(self.sidecar_pods and self.sidecar_pods.taken(name)),
        )
        self.control = ControlPlane(
            state_dir=self.state_dir,
            events=self.events,
            endpoints=self.endpoints,
            pusher=self.pusher,
            placement_for=self._placement,
            extra_env=self._extra_env,
            publish=self.kubelet.publish,
            reconcile=self.rollout.reconcile,
            envoy_up=lambda: self._system_up("envoy"),
            on_change=self._write_state,
            check_ports=self._check_new_listeners,
        )
        self.watcher: Watcher | None = None
        self.events_api: EventsApi | None = None
        # set once `mesh check`'s schemas are loaded (a first apply before pays for them)
        self.checks_warm = threading.Event()
        self._state_written = False
        self._state_lock = threading.Lock()

    # -- lifecycle
    def __enter__(self) -> LocalMesh:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        binary = envoy.envoy_binary()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        stop_leftovers(self.state_dir)
        self.events.attach(self.state_dir / EVENTS_FILE)
        self._ports: dict[str, int] = {}
        self.events_api = EventsApi(self.events)
        self.events_api.start()
        generation = self.control.first(self._directory, secure=self._secure)
        check_fixed_ports(self.gateway_ports, self.listeners, self.admin_port, self.traces_port)
        eds = dict(generation.eds_files)
        if self.sidecar_setup is not None:
            validate_sidecars(list(self.sidecar_setup.configs.values()), binary)
            live = LiveSidecars(self.sidecar_setup, self.state_dir, self._system_up, free_port)
            eds.update(live.first())  # their xDS files, each sidecar's bootstrap in place
            self.control.sidecars, self.control.secure = live, self._secure
            self.sidecar_pods = SidecarPods(
                live, self.kubelet, self.control, free_port, self.state_dir, self.ready_timeout
            )
        self.endpoints.set_clusters(eds, generation.deployment_of)  # the files exist first
        self.pusher.first(generation.xds, "1")
        bootstrap = envoy.runtime_settings(generation.xds.bootstrap)
        self.config_path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        for d in generation.manifests.deployments:
            strategy(d)  # refuse a strategy the rollout could not follow, before starting
            for name in d.instance_names():
                self.kubelet.run_pod(self._new_pod(generation.blueprints[d.name], name))
        if self.sidecar_setup is not None:
            start_sidecars(self.kubelet, self.sidecar_setup, binary, self.state_dir)
        argv = envoy.command(self.config_path, base_id=self.admin_port, binary=binary)
        self.kubelet.run_system(SystemProcess("envoy", argv))
        if self.traces_port is not None:
            self.kubelet.run_system(SystemProcess("traces", traces_command(self.traces_port)))
        self._state_written = True
        self._write_state()  # `mesh status` works from here on
        self._wait_ready(started)
        for pod in self.workloads:  # probed ready, published, and in every Envoy's clusters
            if not self.rotation.available(pod, self.ready_timeout):
                raise RunnerError(f"Envoy did not list {pod.name} within {self.ready_timeout:.0f}s")
        self.control.in_force(generation)
        self._settle()
        self.kubelet.start()
        self._write_state()
        threading.Thread(target=self._warm_up, name="warm-up-checks", daemon=True).start()
        if self.watch:
            self.watcher = Watcher(self.directory, self._apply_watched)
            self.watcher.start(generation.manifests)

    def _extra_env(self) -> dict[str, str]:
        """What every workload gets from the local mesh: the trace receiver, the events."""
        extra = trace_env(self.traces_url) if self.traces_url else {}
        if self.events_api is not None:
            extra[EVENTS_URL_ENV] = f"{self.events_api.url}/events"
        return extra

    def _warm_up(self) -> None:
        try:
            with contextlib.suppress(Exception):
                warm_up_checks(self.directory)
        finally:
            self.checks_warm.set()

    def _placement(self, manifests: Manifests) -> tuple[Placement, Listeners]:
        """Where generation's objects run: the replicas' ports (placeholders for replicas
        not started yet), the fixed gateway, service and admin ports."""
        names = [i for d in manifests.deployments for i in d.instance_names()]
        if self.control.generation is None:  # generation 1: the ports every replica gets
            self._ports = {name: free_port() for name in names}
            endpoints = dict(self._ports)
            if self.sidecars:
                traces = (LOCAL_HOST, self.traces_port) if self.traces_port is not None else None
                self.sidecar_setup = prepare(
                    manifests, self._ports, self.state_dir, free_port, traces
                )
                endpoints = self.sidecar_setup.inbound_ports()
        else:
            endpoints = {name: PLACEHOLDER_PORT for name in names}
        placement = local_placement(
            manifests,
            endpoints,
            gateway_port=self.gateway_port,
            service_ports=self.service_port_overrides,
            admin_port=self.admin_port,
            traces_port=self.traces_port,
            running_gateway_ports=self.gateway_ports,
            # with sidecars the apps call their own; the Service listeners serve the host,
            # which calls as the ingress gateway (docs/security.md)
            caller=(INGRESS.labels, INGRESS.namespace) if self.sidecars else None,
        )
        listeners = placement.service_ports
        if self.control.generation is None:
            self.listeners, self.gateway_ports = listeners, placement.gateway_ports
        return placement, listeners

    def _secure(self, config: dict[str, Any], manifests: Manifests) -> None:
        if self.sidecar_setup is not None:  # the sidecars' mTLS modes as MANIFESTS set them
            secure_gateway(config, self.sidecar_setup, manifests)

    def _new_pod(self, bp: Blueprint, name: str) -> Pod:
        """Replica NAME of BP, not started: generation 1's planned port, else a free one.
        With sidecars it calls its own sidecar and is reached through it."""
        if self.sidecar_pods is not None:  # its own sidecar, started first if new
            s = self.sidecar_pods.for_replica(bp, name)
            env = bp.pod_env(name, s.app_port, dict(s.outbound))
            return Pod(name, bp.template, env, s.app_port, s.inbound_port)
        port = self._ports.pop(name, None) or free_port()
        return Pod(name, bp.template, bp.pod_env(name, port), port, port)

    def _wait_ready(self, started: float) -> None:
        probes = {p.name: startup_url(p) for p in self.workloads}
        probes["envoy"] = f"{self.admin_url}/ready"
        for s in self.sidecar_setup.sidecars if self.sidecar_setup else []:
            probes[s.name] = f"{s.admin_url}/ready"
        if self.traces_url is not None:
            probes["traces"] = f"{self.traces_url}/healthz"
        wait_first_start(
            probes, self.kubelet.children, started + self.ready_timeout, self.ready_timeout
        )

    # -- Envoy's view of a replica
    def envoy_admin_urls(self) -> list[str]:
        """The shared Envoy's admin, then every sidecar's (each gets the endpoints)."""
        sidecars = self.sidecar_setup.sidecars if self.sidecar_setup else []
        return [self.admin_url, *(s.admin_url for s in sidecars)]

    def _settle(self) -> None:
        """Wait out Envoy's update merge window after the last EDS change, so an outlier
        ejection right after `ready` takes effect at once (as in a cluster whose
        endpoints changed more than a second ago)."""
        time.sleep(self.endpoints.settled_in())  # a known deadline, not a guess

    # -- apply: a new generation (`mesh apply`, the watcher)
    def apply(self, directory: str | Path | None = None, source: str = "apply") -> dict[str, Any]:
        """Apply DIRECTORY (default: the one this mesh runs) as a new generation: refused
        with findings, or pushed to Envoy and its Deployments reconciled. Returns
        {generation, result: applied|refused|unchanged, changes, findings, problems}."""
        with self.control.lock:
            try:
                return self.control.apply(Path(directory) if directory else self.directory, source)
            finally:
                with self.kubelet.cond:  # wake whoever waits on the generation
                    self.kubelet.cond.notify_all()

    def set_route_weights(
        self, service: str, weights: dict[str, int] | None, source: str = "rollout"
    ) -> dict[str, Any]:
        """SERVICE's default route sends WEIGHTS ({subset: percent}; None: as the files
        say) from a new generation on; the files stay as they are (mesh/loop/weights.py).
        Returns what `apply` returns."""
        with self.control.lock:
            try:
                return self.control.set_weights(self.directory, service, weights, source)
            finally:
                with self.kubelet.cond:
                    self.kubelet.cond.notify_all()

    def route_weights(self, service: str) -> dict[str, int]:
        """{subset: weight} of SERVICE's default route in the generation in force."""
        assert self.generation is not None
        return route_weights(self.generation.manifests, service)

    def _apply_watched(self) -> None:
        self.apply(source="watch")
        if self.watcher is not None and self.generation is not None:
            self.watcher.track(self.generation.manifests)

    def _check_new_listeners(self, generation: Generation) -> None:
        """A listener or gateway port the running mesh does not have yet must be free."""
        placement, listeners = self._placement(generation.manifests)
        self.listeners = check_new_listeners(self.listeners, listeners)
        self.gateway_ports = check_new_gateway_ports(self.gateway_ports, placement.gateway_ports)

    def _system_up(self, name: str) -> bool:
        """Whether system process NAME (Envoy, a sidecar) runs now."""
        proc = next((p for p in self.kubelet.system if p.name == name), None)
        return bool(proc and proc.child and proc.child.alive)

    # -- rolling restart (`mesh restart`, as `kubectl rollout restart`)
    def restart(self, deployment: str, say: Callable[[str], None] = print) -> list[str]:
        """Replace DEPLOYMENT's replicas by its strategy (a surge replica starts on a new
        port before an old one leaves), with no failed request. Returns the replaced
        instance names; RunnerError on a failure."""
        assert self.generation is not None
        bp = self.generation.blueprints.get(deployment)
        if bp is None:
            have = ", ".join(self.generation.blueprints)
            raise RunnerError(f"no Deployment {deployment!r} in this mesh (have: {have})")
        with self.control.lock:
            names = sorted(p.name for p in self.kubelet.pods_of(deployment) if not p.terminating)
            plan = strategy(bp.deployment)
            say(
                f"{deployment}: replacing {', '.join(names)} ({plan.type}, maxSurge "
                f"{plan.max_surge}, maxUnavailable {plan.max_unavailable})"
            )
            try:
                self.rollout.roll(bp, force=True)  # with sidecars: new ones, new names
            except StuckRollout as exc:
                raise RunnerError(str(exc)) from exc
            self._settle()
            for pod in sorted(self.kubelet.pods_of(deployment), key=lambda p: p.name):
                say(
                    f"{pod.name}: restarted (pid {pod.pid}, port {pod.port}), ready and in "
                    f"Envoy's rotation"
                )
            self._write_state()
            return names

    # -- state file
    def _write_state(self) -> None:
        if not self._state_written:
            return
        with self._state_lock:
            self._state().write(self.state_dir)

    def stop(self) -> None:
        """Stop every process group and remove the state file; idempotent."""
        if self.watcher is not None:
            self.watcher.stop()
        self.kubelet.stop()
        if self.events_api is not None:
            self.events_api.stop()
            self.events_api = None
        if self._state_written:  # never another mesh's state file
            remove_state(self.state_dir)
            self._state_written = False
