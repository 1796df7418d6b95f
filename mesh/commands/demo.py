"""`mesh demo NAME`: one of Istio's tasks on a throwaway local mesh, start to finish.

Each demo starts the local mesh from the manifest directory the task needs, on
free ports and in a temporary state directory (so it never collides with a
running `make run` or its state file), runs the scenario of :mod:`mesh.demos`
against it, prints the evidence and then stops every process (the line
`stopped ...` comes after the results of that mesh). Every step is bounded in
requests or time; the logs of a failed run are kept and their path printed.

- canary: `k8s` (x-canary: "true" -> v2, else v1), then `k8s/variants/weighted`
  (90/10 split, x-canary still v2). Load enters at the gateway, so the split
  also proves that the frontend forwards `x-canary` to the backend.
- circuit-breaker: `k8s/variants/circuit-breaker` (Istio's tight pool), load on
  backend-service at -c 1, -c 2, -c 3 with Envoy's overflow counters after each.
- outlier: `k8s`, load running, fault on one v1 replica, Envoy ejects it, the
  success rate recovers, the fault is cleared and the host returns after
  baseEjectionTime.
- mirror: `k8s/variants/mirror`, load at the gateway: every answer is v1's, and Envoy's
  v2 cluster counts as many requests as v1's (the copies, whose answers it drops).
- rollout: `k8s`, `mesh rollout` twice (mesh/rollout/demo.py): a healthy v2 promoted,
  then v2 answering 30% 503s rolled back at its first step.
- secure-gateway: a copy of `k8s/variants/secure-gateway` (mesh/demos/secure_gateway.py):
  HTTPS by SNI, MUTUAL and new certificates applied live.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.cli import CliError

HELP = "start the local mesh on free ports, run one of Istio's traffic tasks, print the evidence"
SCENARIOS = ("canary", "circuit-breaker", "outlier", "mirror", "rollout", "secure-gateway")
DEFAULT_REQUESTS = {"canary": 100, "circuit-breaker": 10, "mirror": 100}
CANARY_CONNECTIONS = 4
OUTLIER_CONNECTIONS = 4
OUTLIER_INSTANCE = "backend-v1-0"
EJECT_WAIT_S = 30.0  # load stops as soon as Envoy ejects (seconds on a quiet machine)
# baseEjectionTime is 15s in k8s/ (30s for a second ejection); Envoy re-admits on its next
# sweep. The wait ends as soon as the host is back: the room is for a loaded machine.
RETURN_WAIT_S = 60.0
POLL_INTERVAL_S = 0.2
ROLLOUT_INTERVAL_S = 3.0  # each step of the rollout demo measures this long

Out = Callable[[str], None]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 60 seconds, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", choices=SCENARIOS, help="which task to run")
    parser.add_argument(
        "--requests",
        type=_positive_int,
        metavar="N",
        help="canary, mirror: requests per load run (100); circuit-breaker: requests per "
        "connection, so -c 3 sends 3N as in Istio's task (10); not used by outlier, rollout",
    )
    parser.add_argument(
        "--window",
        type=_positive_float,
        default=2.0,
        metavar="SECONDS",
        help="outlier: seconds of load before the fault and while the host is ejected (2)",
    )
    parser.add_argument(
        "--k8s-dir", default="k8s", metavar="DIR", help="the manifest directory (default k8s)"
    )


# --------------------------------------------------------------------------- the local mesh


@contextlib.contextmanager
def local_mesh(directory: Path, out: Out) -> Iterator[Any]:
    """LocalMesh of DIRECTORY with every listener and the admin on a free port.

    The state directory is temporary: removed after a clean run, kept (and named)
    after a failure so its logs can be read. The caller prints its results inside the
    block, so they come before the line that says the mesh stopped.
    """
    from mesh.manifests import load
    from mesh.processes import free_port, free_ports_from
    from mesh.runner import LocalMesh
    from mesh.translate.placement import default_gateway_ports, default_service_ports

    if not directory.is_dir():
        raise CliError(f"{directory}: not a directory")
    manifests = load(directory)
    names = [name for name, _ in default_service_ports(manifests)]
    one_port = {name: free_port() for name in names if names.count(name) == 1}
    work = Path(tempfile.mkdtemp(prefix="taskmesh-demo-"))
    started = time.monotonic()
    out(f"starting the local mesh from {directory} on free ports ...")
    mesh = LocalMesh(
        directory,
        gateway_port=free_ports_from(max(1, len(default_gateway_ports(manifests)))),
        admin_port=free_port(),
        service_ports=one_port,
        state_dir=work,
    )
    ok = False
    try:
        with mesh:
            out(
                f"  {len(mesh.workloads)} workloads and Envoy ready in "
                f"{time.monotonic() - started:.1f}s (gateway {mesh.gateway_url}, "
                f"admin {mesh.admin_url})"
            )
            yield mesh
            ok = True
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            out(f"  logs kept in {work / 'logs'}")
    out(f"stopped the local mesh from {directory}")


# --------------------------------------------------------------------------- canary


def _base_section(report: Any) -> str:
    return "\n".join(["", "== k8s: header-based canary ==", report.render()])


def _weighted_section(report: Any) -> str:
    title = "== k8s/variants/weighted: 90% v1 / 10% v2, x-canary still -> v2 =="
    return "\n".join(["", title, report.render()])


@dataclass
class CanaryDemo:
    base: Any  # mesh.demos.CanaryReport, mesh from k8s
    weighted: Any  # mesh.demos.CanaryReport, mesh from k8s/variants/weighted

    def render(self) -> str:
        return "\n".join([_base_section(self.base), _weighted_section(self.weighted)]).lstrip()


def canary_demo(k8s: Path, requests: int, out: Out) -> CanaryDemo:
    from mesh import demos

    with local_mesh(k8s, out) as mesh:
        base = demos.canary(mesh.gateway_url + "/api/tasks", requests, CANARY_CONNECTIONS)
        out(_base_section(base))
    with local_mesh(k8s / "variants" / "weighted", out) as mesh:
        weighted = demos.canary(mesh.gateway_url + "/api/tasks", requests, CANARY_CONNECTIONS)
        out(_weighted_section(weighted))
    return CanaryDemo(base, weighted)


# --------------------------------------------------------------------------- circuit breaker


@dataclass
class BreakerDemo:
    report: Any  # mesh.demos.BreakerReport

    def overflow_at(self, connections: int) -> int:
        return next(s.overflow_delta for s in self.report.steps if s.connections == connections)

    def render(self) -> str:
        return "\n".join(
            [
                "== k8s/variants/circuit-breaker: maxConnections 1, http1MaxPendingRequests 1 ==",
                self.report.render(),
                "  503s with x-envoy-overloaded are Envoy refusing work (response flag UO), "
                "not the backend failing; they are never retried.",
            ]
        )


def circuit_breaker_demo(k8s: Path, requests: int, out: Out) -> BreakerDemo:
    from mesh import demos

    with local_mesh(k8s / "variants" / "circuit-breaker", out) as mesh:
        url = mesh.service_url("backend-service") + "/api/tasks"
        demo = BreakerDemo(
            demos.circuit_breaker(url, mesh.admin_url, requests_per_connection=requests)
        )
        out("\n" + demo.render())
    return demo


# --------------------------------------------------------------------------- mirror


@dataclass
class MirrorDemo:
    report: Any  # mesh.demos.MirrorReport

    def render(self) -> str:
        return "\n".join(["== k8s/variants/mirror: v1 answers, v2 gets a copy ==",
                          self.report.render()])  # fmt: skip


def mirror_demo(k8s: Path, requests: int, out: Out) -> MirrorDemo:
    from mesh import demos

    with local_mesh(k8s / "variants" / "mirror", out) as mesh:
        url = mesh.gateway_url + "/api/tasks"
        demo = MirrorDemo(demos.mirror(url, mesh.admin_url, requests, CANARY_CONNECTIONS))
        out("\n" + demo.render())
    return demo


# --------------------------------------------------------------------------- outlier


@dataclass
class OutlierDemo:
    report: Any  # mesh.demos.OutlierReport
    instance: str
    while_ejected: list[Any]  # mesh.admin.ClusterStatus, right after the fault was cleared
    returned_after_s: float | None  # None: still ejected at the end of the wait
    after_return: list[Any]  # mesh.admin.ClusterStatus
    check: Any  # mesh.load.runner.Result: a load run after the host returned

    def ejected_hosts(self) -> list[str]:
        return [h.hostname for c in self.while_ejected for h in c.hosts if h.ejected]

    def render(self) -> str:
        lines = [
            f"== k8s: fault on {self.instance}, outlierDetection consecutive5xxErrors ==",
            self.report.render(),
            "",
            "hosts right after the fault was cleared (as `mesh status` shows them):",
            *_hosts(self.while_ejected),
        ]
        if self.returned_after_s is None:
            lines.append(f"{self.instance} was still ejected after {RETURN_WAIT_S:.0f}s")
        else:
            lines.append(
                f"{self.instance} returned {self.returned_after_s:.1f}s after the fault was "
                "cleared (baseEjectionTime, checked every interval):"
            )
            lines += _hosts(self.after_return)
        from mesh import demos

        instances = ", ".join(f"{k} x {v}" for k, v in sorted(self.check.instances.items()))
        lines.append(
            f"load after the return: {demos.success_rate(self.check):.1f}% 2xx, "
            f"answered by {instances or '-'}"
        )
        return "\n".join(lines)


def _hosts(clusters: list[Any]) -> list[str]:
    lines = []
    for c in clusters:
        hosts = ", ".join(
            f"{h.hostname or h.address} "
            + ("EJECTED" if h.ejected else "healthy" if h.healthy else "unhealthy")
            for h in c.hosts
        )
        active = c.stats.get("outlier_detection.ejections_active", 0)
        lines.append(f"  {c.name}: {hosts or '(none)'}; ejections active {active}")
    return lines


def _backend_clusters(admin_url: str) -> list[Any]:
    from mesh import admin

    return [c for c in admin.clusters(admin_url) if "backend-service" in c.name]


def _ejections_active(clusters: list[Any]) -> int:
    return sum(c.stats.get("outlier_detection.ejections_active", 0) for c in clusters)


def outlier_demo(k8s: Path, window_s: float, out: Out) -> OutlierDemo:
    from mesh import demos
    from mesh.load.runner import run_load

    with local_mesh(k8s, out) as mesh:
        url = mesh.service_url("backend-service") + "/api/tasks"
        out(f"  load on {url}; fault on {OUTLIER_INSTANCE} once {window_s:g}s have passed ...")
        report = demos.outlier(
            url,
            mesh.admin_url,
            mesh.instance_url(OUTLIER_INSTANCE),
            connections=OUTLIER_CONNECTIONS,
            window=f"{window_s:g}s",
            eject_wait_s=EJECT_WAIT_S,
        )
        cleared = time.monotonic()
        while_ejected = _backend_clusters(mesh.admin_url)
        out(f"  fault cleared; waiting up to {RETURN_WAIT_S:.0f}s for Envoy to re-admit the host")
        returned: float | None = None
        after = while_ejected
        deadline = cleared + RETURN_WAIT_S
        while time.monotonic() < deadline:
            after = _backend_clusters(mesh.admin_url)
            if not _ejections_active(after):
                returned = time.monotonic() - cleared
                break
            time.sleep(POLL_INTERVAL_S)  # admin poll interval
        check = run_load(url, connections=OUTLIER_CONNECTIONS, duration=window_s)
        demo = OutlierDemo(report, OUTLIER_INSTANCE, while_ejected, returned, after, check)
        out("\n" + demo.render())
    return demo


# --------------------------------------------------------------------------- the command


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM stops the demo as Ctrl-C does: the mesh's processes are stopped on the way out
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_demo(scenario: str, k8s: Path, requests: int | None, window_s: float, out: Out) -> Any:
    """Run SCENARIO, printing with OUT each mesh's results before the line that says it
    stopped; return its evidence object (whose ``render()`` is those results)."""
    if scenario == "outlier":
        if requests is not None:
            raise CliError("--requests is not used by outlier (its phases are timed: --window)")
        return outlier_demo(k8s, window_s, out)
    if scenario in ("rollout", "secure-gateway") and requests is not None:
        raise CliError(f"--requests is not used by {scenario} (it sends its own requests)")
    if scenario == "rollout":
        from mesh.rollout.demo import rollout_demo

        return rollout_demo(k8s, ROLLOUT_INTERVAL_S, out)
    if scenario == "secure-gateway":
        from mesh.demos.secure_gateway import secure_gateway_demo

        return secure_gateway_demo(k8s, out)
    n = requests or DEFAULT_REQUESTS[scenario]
    if scenario == "canary":
        return canary_demo(k8s, n, out)
    if scenario == "mirror":
        return mirror_demo(k8s, n, out)
    return circuit_breaker_demo(k8s, n, out)


def run(args: argparse.Namespace) -> int:
    import httpx

    from mesh.load.options import OptionError

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_demo(
            args.scenario,
            Path(args.k8s_dir),
            args.requests,
            args.window,
            lambda line: print(line, flush=True),
        )
    except OptionError as exc:
        raise CliError(str(exc)) from exc
    except httpx.HTTPError as exc:  # a process of the mesh stopped answering mid-demo
        raise CliError(f"{args.scenario}: {type(exc).__name__}: {exc}") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
