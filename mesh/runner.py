"""Run a manifest directory on loopback: one process per Deployment replica, one Envoy.

    with LocalMesh("k8s", gateway_port=8080) as mesh:
        mesh.gateway_url, mesh.service_url("backend-service"), mesh.admin_url, ...

Start-up: read and translate the manifests, check the fixed ports are free, validate the
Envoy config (`envoy --mode validate`), start every replica (its own process group, a
free port, the Deployment's env) and Envoy, then wait on every `/readyz` and Envoy's
admin `/ready`. Any failure stops everything started so far and raises RunnerError with
the failing child's last log lines. Leaving the block stops every process group.

Readiness is Istio's: Envoy's outbound clusters get their endpoints over EDS (files under
<state-dir>/eds), and the runner plays kubelet and endpoints controller
(mesh/endpoints.py): it runs every replica's readinessProbe and publishes the ready
replicas only. The mesh is ready when every replica is and every Envoy lists them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from mesh import admin, envoy
from mesh.endpoints import Endpoints
from mesh.errors import MeshError, RunnerError
from mesh.manifests import Container, Deployment, Manifests, load
from mesh.processes import (
    LOCAL_HOST,
    Child,
    Echo,
    check_port_free,
    echo_to,
    free_port,
    start_child,
    stop_children,
)
from mesh.sidecars import (
    SidecarSetup,
    leftover_pids,
    prepare,
    record_pids,
    secure_gateway,
    validate_all,
)
from mesh.state import (
    DEFAULT_STATE_DIR,
    InstanceState,
    MeshState,
    check_no_running_mesh,
    remove_state,
)
from mesh.translate import local_placement, translate
from mesh.translate.clusters import endpoint_probes, resolve_host
from mesh.translate.eds import use_eds
from mesh.translate.placement import DEFAULT_ADMIN_PORT, DEFAULT_GATEWAY_PORT

# image name (without registry and tag) -> console entry point of this project
IMAGE_ENTRY_POINTS = {
    "taskmesh-backend": "backend",
    "taskmesh-frontend": "frontend",
}
TASKS_DB_FILE = "tasks.db"
EDS_DIR = "eds"
READY_TIMEOUT_S = 30.0
_URL = re.compile(r"(?P<scheme>https?://)(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)")


# --------------------------------------------------------------------------- planning


@dataclass
class Workload:
    """One replica to run: instance `D-N` of Deployment D."""

    name: str
    deployment: Deployment
    image: str
    argv: list[str]
    env: dict[str, str]
    port: int


def entry_point(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return IMAGE_ENTRY_POINTS.get(base, "")


def _executable(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RunnerError(f"entry point {name!r} not found (run `make install`)")
    return found


def _container(d: Deployment) -> Container:
    if len(d.containers) != 1:
        raise RunnerError(
            f"{d.where()}: spec.template.spec.containers: the local mesh runs exactly one "
            f"container per replica (found {len(d.containers)})"
        )
    return d.containers[0]


def rewrite_urls(value: str, manifests: Manifests, namespace: str, listeners: dict) -> str:
    """`http://backend-service:5000` -> `http://127.0.0.1:<outbound listener>`: the app
    calls the Service name, the local mesh answers on loopback (as a sidecar would)."""

    def swap(m: re.Match[str]) -> str:
        service = resolve_host(manifests, m.group("host"), namespace)
        key = (service.name, int(m.group("port"))) if service else None
        if key is None or key not in listeners:
            return m.group(0)
        return f"{m.group('scheme')}{LOCAL_HOST}:{listeners[key]}"

    return _URL.sub(swap, value)


def plan_workloads(
    manifests: Manifests,
    state_dir: Path,
    listeners: dict[tuple[str, int], int],
    ports: dict[str, int] | None = None,
    instance_listeners: dict[str, dict[tuple[str, int], int]] | None = None,
) -> list[Workload]:
    """Every replica with its command, env and port (free ports unless PORTS gives them).
    INSTANCE_LISTENERS: an instance's own Service URLs (its sidecar's outbound ports)."""
    workloads = []
    for d in manifests.deployments:
        container = _container(d)
        index = d.containers.index(container)
        name = entry_point(container.image)
        if not name:
            raise RunnerError(
                f"{d.where()}: spec.template.spec.containers[{index}].image "
                f"{container.image!r} has no local entry point (known images: "
                f"{', '.join(sorted(IMAGE_ENTRY_POINTS))})"
            )
        argv = [_executable(name)]
        for instance in d.instance_names():
            port = (ports or {}).get(instance) or free_port()
            own = (instance_listeners or {}).get(instance, listeners)
            env = _env(d, container, instance, port, state_dir, manifests, own)
            workloads.append(Workload(instance, d, container.image, argv, env, port))
    return workloads


def _env(
    d: Deployment,
    container: Container,
    instance: str,
    port: int,
    state_dir: Path,
    manifests: Manifests,
    listeners: dict[tuple[str, int], int],
) -> dict[str, str]:
    field_values = {
        "metadata.name": instance,
        "metadata.namespace": d.namespace,
        "status.podIP": LOCAL_HOST,
        "status.hostIP": LOCAL_HOST,
        "spec.nodeName": socket.gethostname(),
    }
    env: dict[str, str] = {}
    for i, var in enumerate(container.env):
        if var.field_path is not None:
            if var.field_path not in field_values:
                raise RunnerError(
                    f"{d.where()}: env[{i}] {var.name}: fieldRef {var.field_path} is not "
                    f"supported by the local mesh (supported: {', '.join(field_values)})"
                )
            env[var.name] = field_values[var.field_path]
        else:
            env[var.name] = rewrite_urls(var.value or "", manifests, d.namespace, listeners)
    if "TASKS_DB" in env:
        env["TASKS_DB"] = str((state_dir / TASKS_DB_FILE).resolve())
    env.update({"HOST": LOCAL_HOST, "PORT": str(port), "PYTHONUNBUFFERED": "1"})
    return env


# --------------------------------------------------------------------------- traces


def trace_env(traces_url: str) -> dict[str, str]:
    """What the workloads need to send spans to the local receiver, quickly, and to link
    a trace id to its view (frontend TRACE_VIEW_URL). Overrides the manifests' OTEL_*."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": traces_url,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{traces_url}/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # the SDK's batch delay (default 5 s): `mesh traces` right after a request shows it
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "TRACE_VIEW_URL": f"{traces_url}/traces/{{trace_id}}",
    }


def traces_command(port: int) -> list[str]:
    return [sys.executable, "-m", "mesh.traces", "--port", str(port), "--parent-pid",
            str(os.getpid())]  # fmt: skip


# --------------------------------------------------------------------------- the mesh


def _use_eds_in_file(path: Path, directory: Path) -> dict[Path, dict]:
    """A written Envoy config (a sidecar's) with its outbound clusters on EDS files."""
    config = yaml.safe_load(path.read_text())
    files = use_eds(config, directory)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return files


def _stop_leftovers(state_dir: Path) -> None:
    """Stop the processes a killed `mesh up` left behind (its state file names them)."""
    for pid in check_no_running_mesh(state_dir) + leftover_pids(state_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    remove_state(state_dir)


class LocalMesh:
    """The manifests of DIRECTORY running on loopback behind one real Envoy."""

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
    ) -> None:
        """TRACES_PORT: run the trace receiver there and trace everything (None: no traces).
        SIDECARS: one Envoy per instance too (mTLS, RBAC; mesh/sidecars), the shared one
        then plays the ingress gateway with its own identity."""
        self.directory = Path(directory)
        self.gateway_port = gateway_port
        self.admin_port = admin_port
        self.service_port_overrides = dict(service_ports or {})
        self.state_dir = Path(state_dir)
        self.echo = echo
        self.ready_timeout = ready_timeout
        self.traces_port = traces_port
        self.traces: Child | None = None
        self.sidecars = sidecars
        self.sidecar_setup: SidecarSetup | None = None
        self.manifests: Manifests | None = None
        self.workloads: list[Workload] = []
        self.children: list[Child] = []
        self.envoy: Child | None = None
        self.config_path = self.state_dir / "envoy.yaml"
        self.listeners: dict[tuple[str, int], int] = {}
        self.gateway_ports: dict[int, int] = {}
        self._state_written = False
        self.endpoints: Endpoints | None = None

    # -- public views
    @property
    def gateway_url(self) -> str:
        port = next(iter(self.gateway_ports.values()), self.gateway_port)
        return f"http://{LOCAL_HOST}:{port}"

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

    def instance_url(self, instance: str) -> str:
        for w in self.workloads:
            if w.name == instance:
                return f"http://{LOCAL_HOST}:{w.port}"
        raise KeyError(instance)

    def logs(self, name: str = "envoy") -> list[str]:
        for child in self.children:
            if child.name == name:
                return list(child.tail)
        raise KeyError(name)

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

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
        self.manifests = manifests = load(self.directory)
        binary = envoy.envoy_binary()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _stop_leftovers(self.state_dir)
        instance_ports = {i: free_port() for d in manifests.deployments for i in d.instance_names()}
        endpoints, setup = instance_ports, None
        if self.sidecars:
            traces = (LOCAL_HOST, self.traces_port) if self.traces_port is not None else None
            setup = prepare(manifests, instance_ports, self.state_dir, free_port, traces)
            self.sidecar_setup, endpoints = setup, setup.inbound_ports()
        placement = local_placement(
            manifests,
            endpoints,
            gateway_port=self.gateway_port,
            service_ports=self.service_port_overrides,
            admin_port=self.admin_port,
            traces_port=self.traces_port,
        )
        self.listeners = placement.service_ports
        self.gateway_ports = placement.gateway_ports
        config = translate(manifests, placement)
        if setup is not None:
            secure_gateway(config, setup)
        own = setup.app_listeners() if setup else None
        self.workloads = plan_workloads(
            manifests, self.state_dir, self.listeners, instance_ports, own
        )
        if self.traces_url is not None:
            for w in self.workloads:
                w.env.update(trace_env(self.traces_url))
        fixed = [(p, f"gateway port {n}") for n, p in placement.gateway_ports.items()]
        fixed += [(p, f"{s}:{n}") for (s, n), p in placement.service_ports.items()]
        fixed.append((self.admin_port, "Envoy admin"))
        if self.traces_port is not None:
            fixed.append((self.traces_port, "trace receiver"))
        for port, what in fixed:
            check_port_free(port, what)
        eds_root = self.state_dir / EDS_DIR
        shutil.rmtree(eds_root, ignore_errors=True)
        eds_files = use_eds(config, eds_root / "envoy")
        sidecar_configs = setup.configs if setup else {}
        for name, path in sidecar_configs.items():
            eds_files.update(_use_eds_in_file(path, eds_root / name))
        probes = endpoint_probes(manifests)
        self.endpoints = Endpoints(
            eds_files,
            {w.name: probes.get(w.deployment.name) for w in self.workloads},
            {w.name: self.instance_url(w.name) for w in self.workloads},
        )
        self.endpoints.start()  # the files exist before Envoy (or validate) reads them
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        validate_all([self.config_path, *sidecar_configs.values()], binary)
        log_dir = self.state_dir / "logs"
        for w in self.workloads:
            self.children.append(start_child(w.name, w.argv, w.env, log_dir, self.echo))
        for s in setup.sidecars if setup else []:
            argv = envoy.command(sidecar_configs[s.name], base_id=s.admin_port, binary=binary)
            self.children.append(start_child(s.name, argv, {}, log_dir, self.echo))
        if setup is not None:
            pids = {c.name: c.popen.pid for c in self.children if c.name in setup.configs}
            record_pids(self.state_dir, setup, pids)
        argv = envoy.command(self.config_path, base_id=self.admin_port, binary=binary)
        self.envoy = start_child("envoy", argv, {}, log_dir, self.echo)
        self.children.append(self.envoy)
        if self.traces_port is not None:
            self.traces = start_child("traces", traces_command(self.traces_port), {}, log_dir,
                                      self.echo)  # fmt: skip
            self.children.append(self.traces)
        self._wait_ready(started)
        for w in self.workloads:  # probed ready, published, and in every Envoy's clusters
            self._wait_in_rotation(w.name, listed=True)
        self._settle()
        self._state().write(self.state_dir)
        self._state_written = True

    def _state(self) -> MeshState:
        assert self.envoy is not None
        return MeshState(
            pid=os.getpid(),
            manifests=str(self.directory),
            admin_url=self.admin_url,
            gateway_urls=[f"http://{LOCAL_HOST}:{p}" for p in self.gateway_ports.values()],
            service_urls={
                f"{s}:{n}": f"http://{LOCAL_HOST}:{p}" for (s, n), p in self.listeners.items()
            },
            envoy_pid=self.envoy.popen.pid,
            instances=[
                InstanceState(w.name, w.deployment.name, w.image, w.port, c.popen.pid)
                for w, c in zip(self.workloads, self.children, strict=False)
            ],
            traces_url=self.traces_url,
        )

    def _wait_ready(self, started: float) -> None:
        probes = {w.name: f"{self.instance_url(w.name)}/readyz" for w in self.workloads}
        probes["envoy"] = f"{self.admin_url}/ready"
        for s in self.sidecar_setup.sidecars if self.sidecar_setup else []:
            probes[s.name] = f"{s.admin_url}/ready"
        if self.traces_url is not None:
            probes["traces"] = f"{self.traces_url}/healthz"
        pending = dict(probes)
        deadline = started + self.ready_timeout
        last: dict[str, str] = {}
        with httpx.Client(timeout=1.0) as client:
            while pending:
                for child in self.children:
                    if not child.alive:
                        code = child.popen.returncode
                        raise RunnerError(
                            f"{child.name} exited with status {code} during start-up; last "
                            f"lines:\n{child.last_lines()}"
                        )
                for name, url in list(pending.items()):
                    try:
                        response = client.get(url)
                    except httpx.TransportError as exc:
                        last[name] = type(exc).__name__
                        continue
                    if response.status_code == 200:
                        del pending[name]
                    else:
                        last[name] = f"HTTP {response.status_code}"
                if not pending:
                    break
                if time.monotonic() > deadline:
                    name = next(iter(pending))
                    child = next(c for c in self.children if c.name == name)
                    raise RunnerError(
                        f"{name} not ready after {self.ready_timeout:.0f}s ({probes[name]}: "
                        f"{last.get(name, 'no answer')}); last lines:\n{child.last_lines()}"
                    )
                time.sleep(0.02)  # poll interval while waiting for readiness

    # -- rolling restart (`mesh restart`; the `mesh up` process owns the children)
    def restart(self, deployment: str, say: Callable[[str], None] = print) -> list[str]:
        """Restart DEPLOYMENT's replicas one at a time, with no failed request.

        Per replica, as a rollout with maxUnavailable 1 and maxSurge 0 would (a new process
        needs the same port, so it cannot start first): readiness off (PUT /admin/ready
        when the app has it), the prober sees its readinessProbe fail and the EDS files
        drop it (a replica without probe or toggle is dropped as terminating), wait until
        no Envoy lists it, SIGTERM (the app finishes what is in flight), start it again
        with the same command, env and port, wait until it is probed ready, published and
        listed (and healthy) by every Envoy. The state file gets the new pid. Returns the
        restarted instance names; RunnerError on a failure.
        """
        assert self.endpoints is not None
        names = [w.name for w in self.workloads if w.deployment.name == deployment]
        if not names:
            have = ", ".join(dict.fromkeys(w.deployment.name for w in self.workloads))
            raise RunnerError(f"no Deployment {deployment!r} in this mesh (have: {have})")
        for name in names:
            index = next(i for i, w in enumerate(self.workloads) if w.name == name)
            w, old = self.workloads[index], self.children[index]
            probed = self.endpoints.probes.get(name) is not None
            url = self.instance_url(name)
            with httpx.Client(timeout=5.0) as client:
                try:
                    toggled = client.put(f"{url}/admin/ready", json={"ready": False})
                    has_toggle = toggled.status_code == 200
                except httpx.TransportError:
                    has_toggle = False
            if has_toggle and probed:
                say(f"{name}: not ready; waiting until its readinessProbe fails")
                if not self.endpoints.wait(name, ready=False, timeout=self.ready_timeout):
                    raise RunnerError(
                        f"{name}: readinessProbe still passes {self.ready_timeout:.0f}s "
                        f"after PUT /admin/ready false"
                    )
            self.endpoints.set_terminating(name, True)
            say(f"{name}: out of the endpoints; waiting until Envoy stops sending it requests")
            self._wait_in_rotation(name, listed=False)
            say(f"{name}: SIGTERM (pid {old.popen.pid}); in-flight requests finish")
            stop_children([old])
            self.endpoints.restarted(name)
            new = start_child(name, w.argv, w.env, self.state_dir / "logs", self.echo)
            self.children[index] = new
            if self._state_written:
                self._state().write(self.state_dir)
            self._wait_child_ready(new, f"{url}/readyz")
            self.endpoints.set_terminating(name, False)  # a probed one waits for its probe
            self._wait_in_rotation(name, listed=True)
            say(f"{name}: restarted (pid {new.popen.pid}), ready and in Envoy's rotation")
        self._settle()
        return names

    def _settle(self) -> None:
        """Wait out Envoy's update merge window after the last EDS change, so an outlier
        ejection right after `ready` takes effect at once (as in a cluster whose
        endpoints changed more than a second ago)."""
        assert self.endpoints is not None
        time.sleep(self.endpoints.settled_in())  # a known deadline, not a guess

    def _wait_child_ready(self, child: Child, url: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                if not child.alive:
                    raise RunnerError(
                        f"{child.name} exited with status {child.popen.returncode} after a "
                        f"restart; last lines:\n{child.last_lines()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RunnerError(
                        f"{child.name} not ready {self.ready_timeout:.0f}s after a restart"
                    )
                time.sleep(0.05)  # poll interval while waiting for readiness

    def _envoy_admin_urls(self) -> list[str]:
        """The shared Envoy's admin, then every sidecar's (each gets the endpoints)."""
        sidecars = self.sidecar_setup.sidecars if self.sidecar_setup else []
        return [self.admin_url, *(s.admin_url for s in sidecars)]

    def _wait_in_rotation(self, instance: str, listed: bool) -> None:
        """LISTED: until INSTANCE is probed ready, published and every Envoy lists it,
        healthy (not ejected), in every cluster that holds it; else until no Envoy lists
        it any more (then no new request goes to it)."""
        assert self.endpoints is not None
        clusters = set(self.endpoints.clusters_of(instance))
        if not clusters:
            return  # behind no Service: no Envoy sends it anything
        deadline = time.monotonic() + self.ready_timeout
        if listed and not self.endpoints.wait(instance, ready=True, timeout=self.ready_timeout):
            raise RunnerError(
                f"{instance}: readinessProbe not passing within {self.ready_timeout:.0f}s"
            )
        with httpx.Client(timeout=5.0) as client:
            while True:
                seen = []
                for url in self._envoy_admin_urls():
                    view = admin._get(client, f"{url}/clusters?format=json").json()
                    for c in view.get("cluster_statuses", []):
                        if c.get("name") not in clusters:
                            continue
                        hosts = [
                            admin._host(h)
                            for h in c.get("host_statuses", [])
                            if h.get("hostname") == instance
                        ]
                        in_rotation = bool(hosts) and all(h.healthy for h in hosts)
                        seen.append(in_rotation if listed else not hosts)
                if seen and all(seen):
                    return
                if time.monotonic() > deadline:
                    state = "list" if listed else "drop"
                    raise RunnerError(
                        f"Envoy did not {state} {instance} within {self.ready_timeout:.0f}s"
                    )
                time.sleep(0.05)  # Envoy reloads an EDS file within milliseconds

    def stop(self) -> None:
        """Stop every process group and remove the state file; idempotent."""
        if self.endpoints is not None:
            self.endpoints.stop()
        stop_children([c for c in self.children if c.popen.returncode is None])
        if self._state_written:  # never another mesh's state file
            remove_state(self.state_dir)
            self._state_written = False


__all__ = [
    "Child",
    "LocalMesh",
    "MeshError",
    "RunnerError",
    "echo_to",
    "free_port",
    "plan_workloads",
]
