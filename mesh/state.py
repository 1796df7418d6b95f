"""The state file of a running local mesh, so `mesh status` and `mesh fault` can find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mesh.errors import StateError

STATE_FILE = "mesh.json"
DEFAULT_STATE_DIR = ".taskmesh"


@dataclass
class InstanceState:
    """One replica, as `mesh status` shows it (keys are only ever added)."""

    name: str
    deployment: str
    image: str
    port: int
    pid: int
    # mesh/loop/pods.py: starting, ready, not-ready, terminating, crash-loop
    state: str = "starting"
    ready: bool = False
    restarts: int = 0
    last_exit: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class MeshState:
    pid: int
    manifests: str
    admin_url: str
    gateway_urls: list[str]
    service_urls: dict[str, str]
    envoy_pid: int
    instances: list[InstanceState] = field(default_factory=list)
    # the trace receiver of `mesh up` (None with --no-traces)
    traces_url: str | None = None
    # the config generation in force: {generation, applied_at, digest, directory,
    # refused: null | {generation, at, findings: [{file, kind, name, field, message}]}}
    config: dict[str, Any] = field(default_factory=dict)
    # Envoy, sidecars, trace receiver: [{name, pid, restarts, last_exit}]
    system: list[dict[str, Any]] = field(default_factory=list)
    # the admin of every Envoy: the shared one, then each sidecar's (`mesh rollout` sums
    # their stats)
    stats_urls: list[str] = field(default_factory=list)
    # each sidecar's Envoy admin by process name (`backend-v1-0.sidecar`), for
    # `mesh proxy-config PROXY`; empty without --sidecars
    proxy_admin_urls: dict[str, str] = field(default_factory=dict)

    def write(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        write_json(path, asdict(self), indent=2)
        return path


def write_text_atomically(path: Path, text: str) -> None:
    """Write TEXT to PATH so a reader (or a crash) never sees half a file; an existing
    file keeps its permission bits."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    try:
        tmp.chmod(path.stat().st_mode & 0o7777)
    except FileNotFoundError:
        pass
    tmp.replace(path)


def write_json(path: Path, data: dict[str, Any], indent: int | None = None) -> None:
    """Write DATA as JSON to PATH atomically: a reader never sees half a file."""
    write_text_atomically(path, json.dumps(data, indent=indent) + "\n")


def pid_alive(pid: int) -> bool:
    """Whether process PID exists (owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(state_dir: Path) -> MeshState:
    """The running mesh of STATE_DIR, or StateError saying how to start one."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        raise StateError(f"no running mesh ({path} not found; start one with `mesh up`)")
    try:
        data = json.loads(path.read_text())
        instances = [InstanceState(**i) for i in data.pop("instances")]
        state = MeshState(**data, instances=instances)
    except (ValueError, TypeError, KeyError) as exc:
        raise StateError(f"{path}: unreadable state file ({exc})") from exc
    if not pid_alive(state.pid):
        raise StateError(f"no running mesh (process {state.pid} of {path} has exited)")
    return state


def check_no_running_mesh(state_dir: Path) -> list[int]:
    """Refuse a STATE_DIR in use by a running mesh. For one left by a killed mesh, return
    the pids of its processes that still run (their command line names this project)."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        pid = int(data["pid"])
        children = [int(i["pid"]) for i in data["instances"]] + [int(data["envoy_pid"])]
    except (ValueError, TypeError, KeyError):
        return []
    if pid_alive(pid) and pid != os.getpid():
        raise StateError(
            f"a mesh is already running with state dir {state_dir} (pid {pid}); stop it "
            f"or pass another --state-dir"
        )
    return [p for p in dict.fromkeys(children) if pid_alive(p) and _ours(p)]


def _ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = {Path(part.decode(errors="replace")).name for part in cmdline[:2]}
    return bool(names & {"envoy", "backend", "frontend", "postgres"})


def remove_state(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)
