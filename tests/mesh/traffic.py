"""Sending traffic through a running local mesh and reading what Envoy saw."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import httpx

from mesh import admin
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
