"""`mesh demo rollout` (`make demo-rollout`): two automated canaries on a throwaway mesh.

1. a healthy v2 is stepped up and promoted;
2. the route goes back to what the files say (v1), v2 gets `mesh fault backend-v2
   --status 503 --error-rate 0.3`, and the same rollout rolls it back at its first step.

Each rollout sends its own load through the gateway, as Flagger's load tester does. The
evidence: each rollout's table, its one-line outcome, the weights Envoy serves after it
(its config dump) and the mesh's events of both rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mesh.rollout.judge import Thresholds
from mesh.rollout.plan import RolloutLock, make_plan
from mesh.rollout.report import Console, Outcome
from mesh.rollout.run import Rollout
from mesh.rollout.served import served_weights, wait_served
from mesh.rollout.target import InProcessMesh

Out = Callable[[str], None]
SERVICE = "backend-service"
CANARY = "v2"
CANARY_DEPLOYMENT = "backend-v2"
STEPS = "20,50,100"
LOAD_QPS = 40.0  # ~24 canary requests in a 3 s interval at 20%
LIMITS = Thresholds(max_error_rate=1.0, max_p99_ms=500.0, min_requests=10)
FAULT = {"status": 503, "error_rate": 0.3, "delay_ms": 0, "delay_rate": 0.0}
SERVE_TIMEOUT_S = 60.0


@dataclass
class RolloutDemo:
    healthy: Outcome
    faulty: Outcome
    served_after: list[dict[str, int]]  # Envoy's weights after each rollout
    events: list[str]


def _weights(weights: dict[str, int]) -> str:
    return ", ".join(f"{s} {w}%" for s, w in weights.items()) or "-"


def _fault(mesh: Any, body: dict[str, Any] | None) -> None:
    with httpx.Client(timeout=5.0) as client:
        for pod in mesh.workloads:
            if pod.deployment == CANARY_DEPLOYMENT and not pod.terminating:
                url = f"{pod.url}/admin/fault"
                response = client.put(url, json=body) if body else client.delete(url)
                response.raise_for_status()


def _one(target: InProcessMesh, interval_s: float, out: Out) -> tuple[Outcome, dict[str, int]]:
    with RolloutLock(target.state_dir, SERVICE):
        plan = make_plan(target, SERVICE, CANARY, None, STEPS, f"{interval_s:g}s", LIMITS)
        out(
            f"mesh rollout {SERVICE} --to {CANARY} --steps {STEPS} --interval {interval_s:g}s "
            f"--min-requests {LIMITS.min_requests} --load {LOAD_QPS:g}"
        )
        outcome = Rollout(target, plan, Console(say=out), LOAD_QPS).run()
    with httpx.Client(timeout=10.0) as client:
        served = served_weights(target.admin_url, SERVICE, client)
    out(f"Envoy serves (its config dump): {_weights(served)}")
    return outcome, served


def rollout_demo(k8s: Path, interval_s: float, out: Out) -> RolloutDemo:
    from mesh.commands.demo import local_mesh

    with local_mesh(k8s, out) as mesh:
        target = InProcessMesh(mesh)
        out("\n== rollout 1: a healthy v2 ==")
        healthy, after_healthy = _one(target, interval_s, out)
        out("\n== rollout 2: v2 with mesh fault backend-v2 --status 503 --error-rate 0.3 ==")
        target.apply(SERVICE, None)  # the route as the files say again: v1
        with httpx.Client(timeout=10.0) as client:
            files = target.file_weights(SERVICE) or {"v1": 100}
            wait_served(target.admin_url, SERVICE, files, client, SERVE_TIMEOUT_S)
        out(f"route back to the files' weights ({_weights(files)}); fault on {CANARY_DEPLOYMENT}")
        _fault(mesh, FAULT)
        try:
            faulty, after_faulty = _one(target, interval_s, out)
        finally:
            _fault(mesh, None)
        lines = [
            e.line()
            for e in mesh.events.recent()
            if e.object == f"rollout/{SERVICE}" or "from rollout" in e.message
        ]
        out("\nthe mesh's events of both rollouts (mesh events): steps, verdicts, generations")
        for line in lines:
            out(f"  {line}")
    return RolloutDemo(healthy, faulty, [after_healthy, after_faulty], lines)
