"""The first start of a local mesh (`mesh up`): leftovers of a killed run, the sidecars'
Envoys, and the wait until every process answers. A process that
dies here fails the start with its last lines (the kubelet only takes over once
everything is up)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from mesh import envoy
from mesh.errors import RunnerError
from mesh.loop.kubelet import Kubelet, SystemProcess
from mesh.loop.local_http import local_client
from mesh.loop.pods import Pod
from mesh.processes import Child
from mesh.sidecars import SidecarSetup, leftover_pids, record_pids
from mesh.state import check_no_running_mesh, remove_state

POLL_S = 0.02  # poll interval while waiting for readiness


def stop_leftovers(state_dir: Path) -> None:
    """Stop the processes a killed `mesh up` left behind (its state file names them)."""
    for pid in check_no_running_mesh(state_dir) + leftover_pids(state_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    remove_state(state_dir)


def start_sidecars(kubelet: Kubelet, setup: SidecarSetup, binary: Path, state_dir: Path) -> None:
    """Start one Envoy per sidecar of SETUP under KUBELET, and record their pids in
    STATE_DIR so that a later `mesh up` can stop the ones a killed run left behind."""
    for s in setup.sidecars:
        argv = envoy.command(setup.configs[s.name], base_id=s.admin_port, binary=binary)
        kubelet.run_system(SystemProcess(s.name, argv))
    record_sidecar_pids(kubelet, setup, state_dir)


def record_sidecar_pids(kubelet: Kubelet, setup: SidecarSetup, state_dir: Path) -> None:
    """Write the pids of SETUP's running sidecars to STATE_DIR (mesh.sidecars.record_pids),
    at the first start and whenever a replica brings or takes one."""
    with kubelet.cond:
        pids = {p.name: p.pid for p in kubelet.system if p.name in setup.configs}
    record_pids(state_dir, setup, {n: p for n, p in pids.items() if p})


def startup_url(pod: Pod) -> str:
    """What the first start waits on for POD: its `/readyz`, or a TCP connect for a pod
    whose readinessProbe is tcpSocket (a database: no HTTP to ask)."""
    readiness = pod.template.probes.readiness
    if readiness is not None and readiness.path is None:
        return f"tcp://127.0.0.1:{pod.port}"
    return f"{pod.url}/readyz"


def _accepts(url: str) -> bool:
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def wait_first_start(
    probes: dict[str, str], children: Callable[[], list[Child]], deadline: float, timeout: float
) -> None:
    """Until every URL of PROBES (name -> URL) answers 200; RunnerError with the last lines
    of a child that exits meanwhile, or of the first one still not ready at DEADLINE."""
    pending = dict(probes)
    last: dict[str, str] = {}
    with local_client(timeout=1.0) as client:
        while pending:
            for child in children():
                if not child.alive:
                    raise RunnerError(
                        f"{child.name} exited with status {child.popen.returncode} during "
                        f"start-up; last lines:\n{child.last_lines()}"
                    )
            for name, url in list(pending.items()):
                if url.startswith("tcp://"):
                    if _accepts(url):
                        del pending[name]
                    else:
                        last[name] = "not accepting connections"
                    continue
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
                return
            if time.monotonic() > deadline:
                name = next(iter(pending))
                child = next(c for c in children() if c.name == name)
                raise RunnerError(
                    f"{name} not ready after {timeout:.0f}s ({probes[name]}: "
                    f"{last.get(name, 'no answer')}); last lines:\n{child.last_lines()}"
                )
            time.sleep(POLL_S)
