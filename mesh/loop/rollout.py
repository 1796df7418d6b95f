"""The local Deployment controller: scale, roll out and remove replicas, as Kubernetes does.

Level-triggered, as the real one: `reconcile(blueprints)` compares what should run (one
blueprint per Deployment, with its replicas) with what runs (the kubelet's pods) and
fixes the difference:

- a Deployment no longer in the manifests: every replica drains and stops;
- a pod template that changed (image, env, probes, lifecycle): a rolling update that
  follows `spec.strategy` (RollingUpdate with maxSurge / maxUnavailable, Kubernetes'
  25% / 25% when unset; or Recreate). A surge replica starts on a new port before an old
  one leaves, so a one-replica Deployment is updated with no failed request;
- `spec.replicas` changed: new replicas start (the lowest free index), surplus ones
  drain and stop (the highest index first: Kubernetes ranks pods to delete by readiness
  and age; the local mesh keeps names `DEPLOYMENT-N` dense instead).

A replica counts as available once it is ready and every Envoy lists it (AVAILABLE), and
an old one is stopped only while enough others are available (maxUnavailable).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from mesh.loop.events import Events
from mesh.loop.kubelet import Kubelet
from mesh.loop.pods import Pod
from mesh.loop.workloads import Blueprint
from mesh.manifests import Deployment
from mesh.translate.fields import Node

DEFAULT_SURGE = "25%"
DEFAULT_UNAVAILABLE = "25%"


@dataclass(frozen=True)
class Strategy:
    type: str  # RollingUpdate | Recreate
    max_surge: int
    max_unavailable: int


def strategy(d: Deployment) -> Strategy:
    """D's spec.strategy with Kubernetes' defaults and rounding (surge up, unavailable
    down); TranslationError naming the field for what Kubernetes would refuse."""
    root = Node(d, "spec", d.raw.get("spec") or {})
    node = root.at("strategy")
    if node.value is None:
        node = Node(d, "spec.strategy", {})
    node.only("type", "rollingUpdate")
    kind = node.at("type").str() if node.has("type") else "RollingUpdate"
    if kind not in ("RollingUpdate", "Recreate"):
        raise node.at("type").error("must be RollingUpdate or Recreate")
    rolling = node.at("rollingUpdate")
    if rolling.value is not None:
        if kind == "Recreate":
            raise rolling.error("may not be set with type Recreate")
        rolling.only("maxSurge", "maxUnavailable")
    replicas = d.replicas

    def amount(key: str, default: str, up: bool) -> int:
        value = rolling.value.get(key) if isinstance(rolling.value, dict) else None
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise rolling.at(key).error("must be an integer or a percentage")
        if isinstance(value, int):
            if value < 0:
                raise rolling.at(key).error("must not be negative")
            return value
        if not value.endswith("%") or not value[:-1].isdigit():
            raise rolling.at(key).error(f"{value!r} is not a percentage such as '25%'")
        exact = replicas * int(value[:-1]) / 100
        return math.ceil(exact) if up else math.floor(exact)

    if kind == "Recreate":
        return Strategy(kind, 0, replicas)
    surge = amount("maxSurge", DEFAULT_SURGE, up=True)
    unavailable = amount("maxUnavailable", DEFAULT_UNAVAILABLE, up=False)
    written = rolling.value if isinstance(rolling.value, dict) else {}
    if all(written.get(k) in (0, "0%") for k in ("maxSurge", "maxUnavailable")):
        # the API server's validation (ValidateRollingUpdateDeployment)
        raise rolling.at("maxUnavailable").error("may not be 0 when maxSurge is 0")
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the controller's ResolveFenceposts: both rounded to 0
    return Strategy(kind, surge, unavailable)


def index_of(pod: Pod) -> int:
    tail = pod.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class StuckRollout(Exception):
    """A new replica did not become available in time (Kubernetes' progress deadline)."""


class Rollout:
    """Turns blueprints into running replicas through the kubelet."""

    def __init__(
        self,
        kubelet: Kubelet,
        events: Events,
        new_pod: Callable[[Blueprint, str], Pod],
        available: Callable[[Pod, float], bool],
        drained: Callable[[Pod], None],
        timeout: float,
        name_taken: Callable[[str], bool] = lambda name: False,
    ) -> None:
        """NEW_POD(blueprint, name): a Pod not started yet (its own port). AVAILABLE(pod,
        timeout): wait until POD is ready and listed by every Envoy; DRAINED(pod): wait
        until no Envoy lists it. NAME_TAKEN(name): a new replica may not take NAME (with
        sidecars, a replica being replaced still has its sidecar of that name)."""
        self.name_taken = name_taken
        self.kubelet = kubelet
        self.events = events
        self.new_pod = new_pod
        self.available = available
        self.drained = drained
        self.timeout = timeout
        self._stopping: list[threading.Thread] = []

    # -- the whole desired state
    def reconcile(self, blueprints: dict[str, Blueprint]) -> list[str]:
        """Make the pods match BLUEPRINTS; the problems met (a stuck rollout), if any."""
        problems = []
        running = {p.deployment for p in self.kubelet.pods if not p.terminating}
        for name in sorted(running - set(blueprints)):
            pods = [p for p in self.kubelet.pods_of(name) if not p.terminating]
            self.events.normal(
                "ScalingReplicaSet",
                f"deployment/{name}",
                f"removed from the manifests: stopping {len(pods)} replicas",
            )
            self._stop(pods)
        for name, bp in blueprints.items():
            try:
                live = self._live(name)
                if any(p.template.digest != bp.template.digest for p in live):
                    self.roll(bp)
                self.scale(bp)
            except StuckRollout as exc:
                problems.append(str(exc))
                self.events.warning("ProgressDeadline", f"deployment/{name}", str(exc))
        self._join()
        return problems

    def _live(self, deployment: str) -> list[Pod]:
        return sorted(
            (p for p in self.kubelet.pods_of(deployment) if not p.terminating), key=index_of
        )

    # -- replicas
    def scale(self, bp: Blueprint) -> None:
        """Start missing replicas, stop surplus ones (highest index first)."""
        d = bp.deployment
        live = self._live(d.name)
        if len(live) == d.replicas:
            return
        self.events.normal(
            "ScalingReplicaSet", f"deployment/{d.name}", f"scaled from {len(live)} to {d.replicas}"
        )
        if len(live) > d.replicas:
            self._stop(sorted(live, key=index_of)[d.replicas :])
            self._join()
            return
        taken = {index_of(p) for p in live}
        started = []
        while len(live) + len(started) < d.replicas:
            index = self._free_index(d.name, taken)
            taken.add(index)
            started.append(self._start(bp, f"{d.name}-{index}"))
        for pod in started:
            self._wait_available(pod)

    # -- rolling update
    def roll(self, bp: Blueprint, force: bool = False) -> None:
        """Replace every replica whose template differs from BP's (FORCE: every one, as
        `kubectl rollout restart`), by the Deployment's strategy."""
        d = bp.deployment
        plan = strategy(d)
        old = [p for p in self._live(d.name) if force or p.template.digest != bp.template.digest]
        new = [p for p in self._live(d.name) if p not in old]
        self.events.normal(
            "RollingUpdate",
            f"deployment/{d.name}",
            f"{plan.type}: {len(old)} replicas to replace (maxSurge "
            f"{plan.max_surge}, maxUnavailable {plan.max_unavailable})",
        )
        if plan.type == "Recreate":
            self._stop(old)
            self._join()
            started = [self._start(bp, f"{d.name}-{i}") for i in range(d.replicas)]
            for pod in started:
                self._wait_available(pod)
            return
        want = d.replicas
        confirmed: set[int] = {p.uid for p in new if p.ready}  # available: ready and listed
        while old or len(new) < want:
            while len(new) < want and len(old) + len(new) < want + plan.max_surge:
                index = self._free_index(d.name, {index_of(p) for p in new})
                new.append(self._start(bp, f"{d.name}-{index}"))
            # old replicas that serve nothing go at once; ready ones while enough others
            # stay available (maxUnavailable)
            idle = [p for p in old if not p.ready]
            serving = [p for p in old if p.ready]
            available = len(confirmed) + len(serving)
            room = max(0, available - (want - plan.max_unavailable))
            victims = idle + serving[:room]
            if victims:
                for p in victims:
                    old.remove(p)
                self._stop(victims, wait=False)
                continue
            waiting = [p for p in new if p.uid not in confirmed]
            if not waiting:
                break  # cannot happen with surge or unavailable above 0 (checked)
            self._wait_available(waiting[0])
            confirmed.add(waiting[0].uid)
        self._join()

    # -- helpers
    def _free_index(self, deployment: str, taken: set[int]) -> int:
        """The lowest index not in TAKEN whose name is not taken otherwise."""
        return next(
            i
            for i in itertools.count()
            if i not in taken and not self.name_taken(f"{deployment}-{i}")
        )

    def _start(self, bp: Blueprint, name: str) -> Pod:
        pod = self.new_pod(bp, name)
        self.kubelet.run_pod(pod)
        return pod

    def _wait_available(self, pod: Pod) -> None:
        if not self.available(pod, self.timeout):
            raise StuckRollout(
                f"{pod.name} (pid {pod.pid}) not available within {self.timeout:.0f}s "
                f"({pod.state}{'; last exit ' + pod.last_exit if pod.last_exit else ''})"
            )

    def _stop(self, pods: list[Pod], wait: bool = True) -> None:
        for pod in pods:
            thread = threading.Thread(
                target=self.kubelet.terminate,
                args=(pod, self.drained),
                name=f"terminate-{pod.name}",
                daemon=True,
            )
            thread.start()
            self._stopping.append(thread)
        if wait:
            self._join()

    def _join(self) -> None:
        for thread in self._stopping:
            thread.join()
        self._stopping.clear()
