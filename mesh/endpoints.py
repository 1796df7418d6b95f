"""The local kubelet + endpoints controller: probe every replica, publish the ready ones.

In a cluster the kubelet runs each pod's readinessProbe, the endpoints controller keeps
only ready (and not terminating) pods in a Service's endpoints, and istiod pushes them
to every Envoy over EDS. Locally `Endpoints` does the same with files: one prober thread
per probed replica (the Deployment's path, period, timeout and thresholds), and on every
change it rewrites the EDS files (mesh/translate/eds.py) of the clusters holding that
replica, atomically (temp file in the same directory, then os.replace: Envoy reloads on
the move). A replica without a readinessProbe is ready once started, as in Kubernetes.

    endpoints = Endpoints(files, probes, app_urls)   # files: path -> full assignment
    endpoints.start()        # writes the files (nothing ready yet), starts the probers
    endpoints.ready(name) / endpoints.wait(name, ready=True, timeout)
    endpoints.set_terminating(name, True)   # a pod being deleted leaves at once
    endpoints.restarted(name)               # a new process: not ready until probed
    endpoints.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mesh.translate.eds import discovery_response, hostnames
from mesh.translate.probes import ReadinessProbe

# Until a (re)started replica first passes its probe, it is probed this often instead of
# every periodSeconds: the kubelet waits a period, but nothing gains from a slower start.
STARTING_POLL_S = 0.1
# Envoy's common_lb_config.update_merge_window default, which istiod keeps: a health
# change (an outlier ejection) within this long of the previous cluster update (an EDS
# change) is held back until the window ends, so the ejected host keeps getting requests.
ENVOY_MERGE_WINDOW_S = 1.0


class Endpoints:
    """Readiness of every replica and the EDS files that follow it (thread-safe)."""

    def __init__(
        self,
        files: dict[Path, dict[str, Any]],
        probes: dict[str, ReadinessProbe | None],
        app_urls: dict[str, str],
    ) -> None:
        """FILES: EDS file -> full ClusterLoadAssignment; PROBES: instance -> its probe
        (None: ready once started); APP_URLS: instance -> the app's own base URL (probed
        past any sidecar, as the kubelet probes the pod)."""
        self.files = dict(files)
        self.probes = dict(probes)
        self.app_urls = dict(app_urls)
        self._lock = threading.Condition()
        self._ready = {name: probe is None for name, probe in self.probes.items()}
        self._starting = set(self.probes)
        self._terminating: set[str] = set()
        self._version = 0
        self.last_write = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what is published
    def published(self, instance: str) -> bool:
        """Whether INSTANCE is in the endpoints Envoy is given."""
        with self._lock:
            return self._published(instance)

    def _published(self, instance: str) -> bool:
        return self._ready.get(instance, True) and instance not in self._terminating

    def clusters_of(self, instance: str) -> list[str]:
        """Names of the clusters whose endpoints include INSTANCE."""
        return sorted({a["cluster_name"] for a in self.files.values() if instance in hostnames(a)})

    def ready(self, instance: str) -> bool:
        with self._lock:
            return self._ready.get(instance, True)

    def wait(self, instance: str, ready: bool, timeout: float) -> bool:
        """Until INSTANCE's probe says READY (False after TIMEOUT)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._ready.get(instance) == ready, timeout)

    # -- changes
    def set_ready(self, instance: str, ready: bool) -> None:
        with self._lock:
            if ready:
                self._starting.discard(instance)
            if self._ready.get(instance) == ready:
                return
            self._ready[instance] = ready
            self._write(instance)
            self._lock.notify_all()

    def set_terminating(self, instance: str, terminating: bool) -> None:
        """A replica being stopped leaves the endpoints whatever its probe says."""
        with self._lock:
            if (instance in self._terminating) == terminating:
                return
            if terminating:
                self._terminating.add(instance)
            else:
                self._terminating.discard(instance)
            self._write(instance)
            self._lock.notify_all()

    def restarted(self, instance: str) -> None:
        """A new process for INSTANCE: probed replicas are not ready until they pass."""
        with self._lock:
            if self.probes.get(instance) is not None:
                self._starting.add(instance)
                if self._ready.get(instance):
                    self._ready[instance] = False
                    self._write(instance)
                    self._lock.notify_all()

    # -- files
    def _write(self, instance: str | None = None) -> None:
        """Rewrite the files holding INSTANCE (all with None). Caller holds the lock."""
        self._version += 1
        self.last_write = time.monotonic()
        ready = {name for name in self._ready if self._published(name)}
        for path, assignment in self.files.items():
            if instance is None or instance in hostnames(assignment):
                write_atomically(path, discovery_response(assignment, ready, self._version))

    def settled_in(self) -> float:
        """Seconds until Envoy applies a health change (an ejection) at once again: its
        merge window after the last EDS change (0 when it has passed)."""
        with self._lock:
            return max(0.0, self.last_write + ENVOY_MERGE_WINDOW_S - time.monotonic())

    # -- probers
    def start(self) -> None:
        """Write every file (replicas without a probe only) and start the probers."""
        with self._lock:
            self._write()
        for name, probe in self.probes.items():
            if probe is None:
                continue
            thread = threading.Thread(
                target=self._probe_loop, args=(name, probe), name=f"probe-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _probe_loop(self, instance: str, probe: ReadinessProbe) -> None:
        successes = failures = 0
        with httpx.Client(timeout=probe.timeout_s) as client:
            while not self._stop.is_set():
                ok = run_probe(client, self.app_urls[instance], probe)
                successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
                if successes >= probe.success_threshold:
                    self.set_ready(instance, True)
                elif failures >= probe.failure_threshold:
                    self.set_ready(instance, False)
                with self._lock:
                    starting = instance in self._starting
                self._stop.wait(STARTING_POLL_S if starting else probe.period_s)


def run_probe(client: httpx.Client, base_url: str, probe: ReadinessProbe) -> bool:
    """One probe as the kubelet runs it: HTTP 200-399 passes, a TCP connect passes."""
    if probe.path is None:
        parts = urlsplit(base_url)
        try:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 80), timeout=probe.timeout_s
            ):
                return True
        except OSError:
            return False
    try:
        response = client.get(f"{base_url}{probe.path}", headers=dict(probe.headers))
    except httpx.HTTPError:
        return False
    return 200 <= response.status_code < 400


def write_atomically(path: Path, content: dict[str, Any]) -> None:
    """Write a temp file in PATH's directory, then move it over PATH (Envoy reacts to the
    move; it must never read a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(content, out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
