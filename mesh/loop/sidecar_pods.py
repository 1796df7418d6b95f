"""A replica and its sidecar start and stop together, as the containers of one pod.

In a cluster the injector puts a sidecar in every new pod of a Deployment: scaling up or
rolling out starts new pods, each with its own proxy, identity and certificate, and a
deleted pod takes its proxy with it. With `mesh up --sidecars` the rollout asks for a
replica (`for_replica`) and gets its sidecar first: new ports, a certificate from the
local CA, the generation in force as its config, its Envoy started and ready before the
app starts behind it. A replica stopped for good (`deleted`) takes its sidecar along,
and every Envoy stops getting its EDS files. Names stay unique while a sidecar lives
(`taken`), so a rolling update starts `backend-v1-2` beside `backend-v1-0`, as a
ReplicaSet names a new pod.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mesh import envoy
from mesh.errors import MeshError
from mesh.loop.istiod import ControlPlane
from mesh.loop.kubelet import Kubelet, SystemProcess
from mesh.loop.pods import Pod
from mesh.loop.rollout import StuckRollout
from mesh.loop.sidecars import LiveSidecars
from mesh.loop.startup import record_sidecar_pids, wait_first_start
from mesh.loop.workloads import Blueprint
from mesh.sidecars import Sidecar
from mesh.sidecars.plan import SIDECAR_SUFFIX, plan_sidecar


class SidecarPods:
    """The sidecars of replicas the control loop starts after `mesh up --sidecars`."""

    def __init__(
        self,
        live: LiveSidecars,
        kubelet: Kubelet,
        control: ControlPlane,
        new_port: Callable[[], int],
        state_dir: Path,
        ready_timeout: float,
    ) -> None:
        self.live = live
        self.kubelet = kubelet
        self.control = control
        self.new_port = new_port
        self.state_dir = state_dir
        self.ready_timeout = ready_timeout

    def taken(self, name: str) -> bool:
        """Whether replica NAME still has a sidecar (a new replica must take another)."""
        return name in self.live.instances()

    def for_replica(self, bp: Blueprint, name: str) -> Sidecar:
        """The sidecar of replica NAME of BP: the running one, or a new one started and
        ready (StuckRollout, with nothing left behind, if it is not)."""
        for s in self.live.setup.sidecars:
            if s.instance == name:
                return s
        generation = self.control.generation
        assert generation is not None
        sidecar = plan_sidecar(
            generation.manifests, bp.deployment, name, self.new_port(), self.new_port
        )
        try:
            self.live.add(generation.manifests, sidecar, str(generation.number))
        except MeshError as exc:
            raise StuckRollout(f"{sidecar.name}: {exc}") from exc
        self.control.refresh_eds()
        config = self.live.setup.configs[sidecar.name]
        argv = envoy.command(config, base_id=sidecar.admin_port, binary=envoy.envoy_binary())
        proc = SystemProcess(sidecar.name, argv)
        self.kubelet.run_system(proc)
        self._record()
        self.kubelet.events.normal(
            "Started", sidecar.name, f"sidecar of {name} (pid {proc.pid}, {sidecar.identity})"
        )
        try:
            wait_first_start(
                {sidecar.name: f"{sidecar.admin_url}/ready"},
                lambda: [proc.child] if proc.child is not None else [],
                time.monotonic() + self.ready_timeout,
                self.ready_timeout,
            )
        except MeshError as exc:
            self._stop(sidecar.name)
            raise StuckRollout(str(exc)) from exc
        return sidecar

    def deleted(self, pod: Pod) -> None:
        """POD is gone for good: its sidecar stops too (unless a replica of that name
        runs again, which the rollout does not start while the sidecar lives)."""
        if any(p.name == pod.name for p in self.kubelet.pods):
            return
        self._stop(f"{pod.name}{SIDECAR_SUFFIX}")

    def _stop(self, name: str) -> None:
        if not self.live.remove(name):
            return
        self.control.refresh_eds()
        self.kubelet.stop_system(name)
        self.kubelet.events.normal("Killing", name, "its replica is gone: sidecar stopped")
        self._record()

    def _record(self) -> None:
        record_sidecar_pids(self.kubelet, self.live.setup, self.state_dir)
