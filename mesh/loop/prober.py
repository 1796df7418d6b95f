"""The local kubelet's probes: one worker thread per run of a replica's process.

As the kubelet: until a startupProbe has passed, neither liveness nor readiness is
probed; readiness decides whether the replica is in the endpoints (the process keeps
running); liveness failing `failureThreshold` times in a row gets the process killed
and restarted. Two local choices, for a quick and calm demo: until a replica is first
ready its readinessProbe runs every 0.1 s instead of every periodSeconds (nothing gains
from a slower start), and the first liveness probe waits one period (a process needs a
moment to listen; the kubelet probes at once and counts that failure).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from mesh.loop.local_http import local_client
from mesh.translate.probes import PodProbes, Probe

STARTING_POLL_S = 0.1


def run_probe(client: httpx.Client, base_url: str, probe: Probe) -> bool:
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
        response = client.get(
            f"{base_url}{probe.path}", headers=dict(probe.headers), timeout=probe.timeout_s
        )
    except httpx.HTTPError:
        return False
    return 200 <= response.status_code < 400


class ProbeWorker:
    """Probes one run of one replica until STOPPED() says this run is over.

    ON_READY(ready) reports readiness changes (and readiness at once when there is no
    readinessProbe, once started); ON_UNHEALTHY(message) a startup or liveness failure
    that must kill the process (the worker then ends)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        probes: PodProbes,
        stopped: Callable[[], bool],
        on_ready: Callable[[bool], None],
        on_unhealthy: Callable[[str], None],
        wake: threading.Event,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.probes = probes
        self.stopped = stopped
        self.on_ready = on_ready
        self.on_unhealthy = on_unhealthy
        self.wake = wake
        self.thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _sleep_until(self, when: float) -> bool:
        """Wait until WHEN (monotonic) or the run is over; False when it is over."""
        while not self.stopped():
            left = when - time.monotonic()
            if left <= 0:
                return True
            self.wake.wait(min(left, 0.5))
        return False

    def _run(self) -> None:
        started = time.monotonic()
        timeout = max(p.timeout_s for p in self._all()) if self._all() else 1
        with local_client(timeout=timeout) as client:
            if not self._startup(client, started):
                return
            self._running(client, time.monotonic())

    def _all(self) -> list[Probe]:
        p = self.probes
        return [x for x in (p.startup, p.liveness, p.readiness) if x is not None]

    def _startup(self, client: httpx.Client, started: float) -> bool:
        probe = self.probes.startup
        if probe is None:
            return True
        if not self._sleep_until(started + probe.initial_delay_s):
            return False
        failures = 0
        while not self.stopped():
            if run_probe(client, self.base_url, probe):
                return True
            failures += 1
            if failures >= probe.failure_threshold:
                self.on_unhealthy(f"startup probe failed {failures} times ({self._what(probe)})")
                return False
            if not self._sleep_until(time.monotonic() + probe.period_s):
                return False
        return False

    def _running(self, client: httpx.Client, started: float) -> None:
        readiness, liveness = self.probes.readiness, self.probes.liveness
        if readiness is None:
            self.on_ready(True)
        next_ready = started + (readiness.initial_delay_s if readiness else 0)
        next_live = started + (max(liveness.initial_delay_s, liveness.period_s) if liveness else 0)
        ever_ready = False
        successes = failures = live_failures = 0
        forever = float("inf")
        while not self.stopped():
            now = time.monotonic()
            if readiness is not None and now >= next_ready:
                ok = run_probe(client, self.base_url, readiness)
                successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
                if successes >= readiness.success_threshold:
                    ever_ready = True
                    self.on_ready(True)
                elif failures >= readiness.failure_threshold and ever_ready:
                    self.on_ready(False)
                period = readiness.period_s if ever_ready else STARTING_POLL_S
                next_ready = time.monotonic() + period
            if liveness is not None and now >= next_live:
                if run_probe(client, self.base_url, liveness):
                    live_failures = 0
                else:
                    live_failures += 1
                    if live_failures >= liveness.failure_threshold:
                        self.on_unhealthy(
                            f"liveness probe failed {live_failures} times ({self._what(liveness)})"
                        )
                        return
                next_live = time.monotonic() + liveness.period_s
            due = min(
                next_ready if readiness is not None else forever,
                next_live if liveness is not None else forever,
            )
            if due == forever:
                due = time.monotonic() + 0.5  # nothing to probe: wait for the run to end
            if not self._sleep_until(due):
                return

    @staticmethod
    def _what(probe: Probe) -> str:
        return f"GET {probe.path}" if probe.path is not None else "TCP connect"
