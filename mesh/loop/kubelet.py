"""The local kubelet: runs every replica and Envoy, probes them, restarts what dies.

    kubelet = Kubelet(endpoints, events, log_dir, echo, on_change)
    kubelet.run_pod(pod)              # start its process and its probe worker
    kubelet.start()                   # the supervision loop (after `mesh up`'s first start)
    kubelet.terminate(pod, drained)   # preStop, SIGTERM, SIGKILL; out of the endpoints first
    kubelet.stop()                    # everything, at Ctrl-C

Restart policy `Always`, as a Deployment's pods have: a replica whose process exits, or
that fails its liveness or startup probe, is started again with the same command, env and
port after a back-off (mesh/loop/pods.py: at once, then 1 s doubling to 30 s), and is out
of the endpoints until its readinessProbe passes again. Envoy and the trace receiver
(`system` processes) are restarted the same way. Every change is an event (`mesh events`)
and reaches ON_CHANGE (the state file), and the published replicas reach the endpoints.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.loop.endpoints import Endpoint, Endpoints
from mesh.loop.events import Events
from mesh.loop.pods import (
    BACKOFF_RESET_S,
    CRASH_LOOP,
    NOT_READY,
    READY,
    STARTING,
    TERMINATING,
    Pod,
    describe_exit,
    next_backoff,
)
from mesh.loop.prober import ProbeWorker
from mesh.processes import Child, Echo, start_child, stop_children
from mesh.state import InstanceState

TICK_S = 0.1


@dataclass(eq=False)
class SystemProcess:
    """Envoy, a sidecar or the trace receiver: restarted like a pod, never probed here."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    child: Child | None = None
    restarts: int = 0
    last_exit: str | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff_s: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.child.popen.pid if self.child is not None else None


class Kubelet:
    """Processes, probes and restarts of one local mesh (thread-safe)."""

    def __init__(
        self,
        endpoints: Endpoints,
        events: Events,
        log_dir: Path,
        echo: Echo | None,
        on_change: Callable[[], None] = lambda: None,
        on_deleted: Callable[[Pod], None] = lambda pod: None,
    ) -> None:
        """ON_DELETED(pod): a replica stopped for good is gone (its sidecar goes next)."""
        self.endpoints = endpoints
        self.on_deleted = on_deleted
        self.events = events
        self.log_dir = log_dir
        self.echo = echo
        self.on_change = on_change
        self.pods: list[Pod] = []
        self.system: list[SystemProcess] = []
        self.cond = threading.Condition(threading.RLock())
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a process's output ended: look at once
        self._thread: threading.Thread | None = None

    # -- views
    def children(self) -> list[Child]:
        """Every process started and not yet reaped from the tables (pods first)."""
        with self.cond:
            pods = [p.child for p in self.pods if p.child is not None]
            return pods + [s.child for s in self.system if s.child is not None]

    def pods_of(self, deployment: str) -> list[Pod]:
        with self.cond:
            return [p for p in self.pods if p.deployment == deployment]

    def find(self, name: str) -> Pod | None:
        """The live (not terminating) replica NAME, else the newest of that name."""
        with self.cond:
            named = [p for p in self.pods if p.name == name]
        live = [p for p in named if not p.terminating]
        return (live or named or [None])[-1]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    # -- pods
    def run_pod(self, pod: Pod) -> None:
        """Add POD and start its first process (RunnerError if it cannot start)."""
        with self.cond:
            self.pods.append(pod)
            self._spawn(pod, first=True)
        self.events.normal("Started", pod.name, f"pid {pod.pid}, port {pod.port}")
        self._changed(publish=False)

    def _spawn(self, pod: Pod, first: bool = False) -> None:
        """Start POD's process and probe worker. Caller holds the lock."""
        argv = list(pod.template.argv)
        pod.child = start_child(
            pod.name,
            argv,
            pod.env,
            self.log_dir,
            self.echo,
            append=not first,
            on_eof=self._wake.set,
        )
        pod.run += 1
        pod.started_at = time.monotonic()
        pod.restart_at = None
        pod.kill_reason = None
        pod.state = STARTING
        pod.ready = False
        run = pod.run
        worker = ProbeWorker(
            pod.name,
            pod.url,
            pod.template.probes,
            stopped=lambda: self._run_over(pod, run),
            on_ready=lambda ready: self._set_ready(pod, run, ready),
            on_unhealthy=lambda message: self._unhealthy(pod, run, message),
            wake=self._stopping,
        )
        worker.start()

    def _run_over(self, pod: Pod, run: int) -> bool:
        return self._stopping.is_set() or pod.run != run or pod.terminating or not pod.alive

    def _set_ready(self, pod: Pod, run: int, ready: bool) -> None:
        with self.cond:
            if pod.run != run or pod.terminating or pod.ready == ready:
                return
            pod.ready = ready
            pod.state = READY if ready else NOT_READY
            if not ready:
                self.events.warning(
                    "Unhealthy", pod.name, "readiness probe failed: out of the endpoints"
                )
        self._changed()

    def _unhealthy(self, pod: Pod, run: int, message: str) -> None:
        """A failed liveness or startup probe: kill the process; the loop restarts it."""
        with self.cond:
            if pod.run != run or pod.terminating or not pod.alive:
                return
            pod.kill_reason = message.split(" (")[0]
            pod.ready = False
            child = pod.child
        self.events.warning("Unhealthy", pod.name, message)
        self.events.normal("Killing", pod.name, "failed its probe, will be restarted")
        self._changed()
        assert child is not None
        stop_children([child], timeout=pod.template.grace_s)

    # -- termination
    def terminate(self, pod: Pod, drained: Callable[[Pod], None] | None = None) -> None:
        """Stop POD for good, as the kubelet deletes a pod: out of the endpoints at once,
        preStop (its sleep, counted from that moment, while DRAINED(pod) waits until no
        Envoy sends it new requests), SIGTERM, SIGKILL after terminationGracePeriodSeconds.
        POD leaves the table once its process is gone."""
        began = time.monotonic()
        with self.cond:
            if pod.terminating:
                return
            pod.terminating = True
            pod.ready = False
            pod.state = TERMINATING
        self.events.normal("Killing", pod.name, f"stopping (pid {pod.pid}, port {pod.port})")
        self._changed()
        if drained is not None:
            with contextlib.suppress(Exception):  # a dead Envoy drops nothing; go on
                drained(pod)
        pre_stop_end = began + pod.template.pre_stop_s
        while time.monotonic() < pre_stop_end and not self._stopping.is_set():
            self._stopping.wait(min(0.2, pre_stop_end - time.monotonic()))
        if pod.child is not None:
            left = max(1.0, pod.template.grace_s - (time.monotonic() - began))
            stop_children([pod.child], timeout=left)
        with self.cond:
            if pod in self.pods:
                self.pods.remove(pod)
        self.events.normal("Deleted", pod.name, f"stopped ({describe_exit(self._code(pod))})")
        self._changed(publish=False)
        self.on_deleted(pod)

    @staticmethod
    def _code(pod: Pod | SystemProcess) -> int | None:
        return pod.child.popen.returncode if pod.child is not None else None

    # -- system processes
    def run_system(self, proc: SystemProcess) -> None:
        with self.cond:
            self.system.append(proc)
            proc.child = start_child(
                proc.name, proc.argv, proc.env, self.log_dir, self.echo, on_eof=self._wake.set
            )
            proc.started_at = time.monotonic()
        self._changed(publish=False)

    def stop_system(self, name: str) -> None:
        """Stop system process NAME for good (a sidecar whose replica is gone)."""
        with self.cond:
            procs = [p for p in self.system if p.name == name]
            self.system[:] = [p for p in self.system if p.name != name]
        stop_children([p.child for p in procs if p.child is not None])
        self._changed(publish=False)

    # -- the loop
    def start(self) -> None:
        """Supervise from now on: restart what exits (the first start is `mesh up`'s)."""
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # one failed restart must not end supervision
                self.events.warning("Failed", "kubelet", f"{type(exc).__name__}: {exc}")
            self._wake.wait(TICK_S)  # a tick, or at once when a process's output ends
            self._wake.clear()

    def tick(self) -> None:
        """One pass: note exits, restart what is due."""
        now = time.monotonic()
        changed = False
        with self.cond:
            for pod in list(self.pods):
                if pod.terminating:
                    continue
                if pod.restart_at is None and pod.child is not None and not pod.alive:
                    self._exited(pod, now)
                    changed = True
                elif pod.restart_at is not None and now >= pod.restart_at:
                    self._restart(pod)
                    changed = True
            for proc in self.system:
                if (
                    proc.restart_at is None
                    and proc.child is not None
                    and proc.child.popen.poll() is not None
                ):
                    self._system_exited(proc, now)
                    changed = True
                elif proc.restart_at is not None and now >= proc.restart_at:
                    self._system_restart(proc)
                    changed = True
        if changed:
            self._changed()

    def _exited(self, pod: Pod, now: float) -> None:
        code = describe_exit(self._code(pod))
        pod.last_exit = f"{pod.kill_reason}; {code}" if pod.kill_reason else code
        pod.ready = False
        pod.state = CRASH_LOOP
        if now - pod.started_at >= BACKOFF_RESET_S:
            pod.backoff_s = 0.0
        pod.restart_at = now + pod.backoff_s
        self.events.warning(
            "BackOff" if pod.backoff_s else "Exited",
            pod.name,
            f"{pod.last_exit}; restarting "
            + (f"in {pod.backoff_s:g}s" if pod.backoff_s else "now"),
        )
        pod.backoff_s = next_backoff(pod.backoff_s)
        if pod.child is not None:
            stop_children([pod.child], timeout=0.5)  # reap, close its pipe

    def _restart(self, pod: Pod) -> None:
        pod.restarts += 1
        self._spawn(pod)
        self.events.normal(
            "Restarted", pod.name, f"after {pod.last_exit} (restart {pod.restarts}, pid {pod.pid})"
        )

    def _system_exited(self, proc: SystemProcess, now: float) -> None:
        proc.last_exit = describe_exit(self._code(proc))
        if now - proc.started_at >= BACKOFF_RESET_S:
            proc.backoff_s = 0.0
        proc.restart_at = now + proc.backoff_s
        self.events.warning("Exited", proc.name, f"{proc.last_exit}; restarting")
        proc.backoff_s = next_backoff(proc.backoff_s)
        if proc.child is not None:
            stop_children([proc.child], timeout=0.5)

    def _system_restart(self, proc: SystemProcess) -> None:
        proc.restarts += 1
        proc.child = start_child(
            proc.name,
            proc.argv,
            proc.env,
            self.log_dir,
            self.echo,
            append=True,
            on_eof=self._wake.set,
        )
        proc.started_at = time.monotonic()
        proc.restart_at = None
        self.events.normal(
            "Restarted",
            proc.name,
            f"after {proc.last_exit} (restart {proc.restarts}, pid {proc.pid})",
        )

    def state(self) -> dict[str, Any]:
        """The processes as the state file gives them to `mesh status`:
        {envoy_pid, instances: [InstanceState], system: [{name, pid, restarts, last_exit}]}."""
        with self.cond:
            pods, system = list(self.pods), list(self.system)
        envoy = next((p for p in system if p.name == "envoy"), None)
        return {
            "envoy_pid": (envoy.pid or 0) if envoy else 0,
            "instances": [
                InstanceState(
                    p.name,
                    p.deployment,
                    p.template.image,
                    p.port,
                    p.pid or 0,
                    state=p.state,
                    ready=p.ready,
                    restarts=p.restarts,
                    last_exit=p.last_exit,
                )
                for p in pods
            ],
            "system": [
                {"name": s.name, "pid": s.pid, "restarts": s.restarts, "last_exit": s.last_exit}
                for s in system
            ],
        }

    # -- publishing
    def publish(self) -> None:
        """Write the endpoints again (a new generation's clusters) and wake waiters."""
        self._changed()

    def published(self) -> list[Endpoint]:
        with self.cond:
            return [
                Endpoint(p.name, p.deployment, p.endpoint_port) for p in self.pods if p.published
            ]

    def _changed(self, publish: bool = True) -> None:
        if publish:
            self.endpoints.sync(self.published())
        with self.cond:
            self.cond.notify_all()
        self.on_change()

    def stop(self) -> None:
        """Stop supervising and every process (pods and system), in parallel."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.cond:
            children = self.children()
        stop_children([c for c in children if c.popen.returncode is None])
        with self.cond:
            self.cond.notify_all()
