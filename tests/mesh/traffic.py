"""Sending traffic through a running local mesh and reading what Envoy saw."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from mesh import admin
from mesh.cli import main as mesh_main
from mesh.manifests import load
from mesh.runner import LocalMesh


def versions(url: str, n: int, headers: dict[str, str] | None = None) -> collections.Counter:
    """x-backend-version of N sequential GETs (status code when the header is absent)."""
    seen: collections.Counter = collections.Counter()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(n):
            r = client.get(url, headers=headers or {})
            seen[r.headers.get("x-backend-version", str(r.status_code))] += 1
    return seen


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until CHECK() is true (readiness-style polling), failing after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def stat(mesh: LocalMesh, cluster: str, name: str) -> int:
    return admin.cluster_stat(mesh.admin_url, cluster, name)


def set_fault(mesh: LocalMesh, instance: str, **body: float) -> None:
    r = httpx.put(f"{mesh.instance_url(instance)}/admin/fault", json=body, timeout=5.0)
    r.raise_for_status()


def clear_fault(mesh: LocalMesh, instance: str) -> None:
    httpx.delete(f"{mesh.instance_url(instance)}/admin/fault", timeout=5.0).raise_for_status()


# Waits on Envoy end as soon as it reports: the room is for a loaded machine.
EJECT_DEADLINE_S = 60.0
SETTLE_DEADLINE_S = 120.0
RETURN_DEADLINE_S = 120.0  # baseEjectionTime 15 s, times the number of ejections
SETTLED_STREAK = 50  # by chance alone, with a 50/50 pick per request: 2**-50


def ejected_then_returns(mesh: LocalMesh, url: str, cluster: str, instance: str) -> None:
    """`mesh fault INSTANCE --status 503`: Envoy ejects it from CLUSTER, only 200s come
    back while it is out, and it returns once the fault is cleared.

    Waits on Envoy's counters, never on a number of requests or on time: a request
    counts as evidence only while Envoy reports the ejection both before and after it
    (on a loaded machine, baseEjectionTime can end mid-check; the fault stays on, so
    the replica is soon ejected again)."""
    state = ["--state-dir", str(mesh.state_dir)]

    def ejected() -> bool:
        return stat(mesh, cluster, "outlier_detection.ejections_active") >= 1

    assert mesh_main(["fault", instance, "--status", "503", "--error-rate", "1", *state]) == 0
    try:
        with httpx.Client(timeout=10.0) as client:

            def request_then_ejected() -> bool:
                client.get(f"{url}/api/tasks")
                return ejected()

            poll(request_then_ejected, timeout=EJECT_DEADLINE_S, what=f"{instance}'s ejection")
            streak = 0

            def only_200s_while_ejected() -> bool:
                nonlocal streak
                before = ejected()
                code = client.get(f"{url}/api/tasks").status_code
                streak = streak + 1 if before and ejected() and code == 200 else 0
                return streak == SETTLED_STREAK

            poll(
                only_200s_while_ejected,
                timeout=SETTLE_DEADLINE_S,
                what=f"{SETTLED_STREAK} 200s in a row while {instance} is ejected",
            )
    finally:
        assert mesh_main(["fault", instance, "--clear", *state]) == 0
    poll(
        lambda: stat(mesh, cluster, "outlier_detection.ejections_active") == 0,
        timeout=RETURN_DEADLINE_S,
        what=f"{instance} to return after its ejection time",
    )


def _one_connection_get(url: str) -> tuple[int, str | None]:
    # one connection per request, as fortio's -c clients do with keep-alive off
    with httpx.Client(timeout=10.0) as client:
        r = client.get(url)
        return r.status_code, r.headers.get("x-envoy-overloaded")


def overflow_burst(
    mesh: LocalMesh, directory: Path, deployment: str = "backend-v1"
) -> list[tuple[int, str | None]]:
    """24 GETs of backend-service, 12 at a time, while every replica of DEPLOYMENT answers
    slowly (300 ms, so a tight pool's one connection stays busy); (status,
    x-envoy-overloaded) of each. The faults are cleared whatever happens."""
    replicas = [
        i for d in load(directory).deployments if d.name == deployment for i in d.instance_names()
    ]
    for instance in replicas:
        set_fault(mesh, instance, status=503, error_rate=0.0, delay_ms=300, delay_rate=1.0)
    try:
        url = f"{mesh.service_url('backend-service')}/api/tasks"
        with ThreadPoolExecutor(max_workers=12) as pool:
            return list(pool.map(_one_connection_get, [url] * 24))
    finally:
        for instance in replicas:
            clear_fault(mesh, instance)
