"""`make bench`: one run, one table - our services next to a bare ASGI app, httpbin and Envoy.

Configurations, all on 127.0.0.1, each loaded by `wrk -t1 -c32` for DURATION:

  bare           a raw ASGI app answering the backend's JSON (the ceiling)
  fastapi        a bare FastAPI endpoint answering the same JSON (the framework's floor)
  envoy-floor    Envoy answering the same JSON itself (a direct_response route), run as
                 the local mesh runs Envoy: the yardstick of an Envoy hop's CPU
  httpbin        httpbin /get under gunicorn with one gevent worker (as its image runs it)
  off            backend /api/tasks, request metrics off
  metrics        backend /api/tasks as shipped (metrics on, no span exporter): the default
  spans          backend /api/tasks, every span exported (batch processor, counting exporter)
  chain          frontend -> backend, direct
  envoy-chain    frontend -> Envoy -> backend: the local mesh of bench/one-backend, its
                 Envoy as `mesh up` runs it (access log, every request traced to the trace
                 receiver, whose CPU the row bills too); the workloads export no spans, as
                 in the direct chain
  gateway-chain  Envoy gateway -> frontend -> Envoy -> backend, the same mesh

Every server runs for the whole bench. After a warm-up, ROUNDS rounds run every
configuration in a shuffled order; the table shows each configuration's median
round, with each process's own CPU per request, and a ratio is the median of
its per-round ratios (runs of one round share the machine's state); the CPU
and tail-latency targets are bench/costs.py. Then: one Envoy hop at -c 1 (backend direct vs
through Envoy's backend-service listener), each service's time to ready, the
time `mesh up k8s` takes to be ready, resident memory after the load, and what
reading the manifests costs (`mesh check k8s`, one manifest load: bench/manifests.py),
and what the control loop achieves (save to served, kill to serving, failures during an
apply and a rollout: bench/control_loop.py).

Servers come from bench/servers.py, their processes and RSS/CPU readings from
bench/processes.py, wrk and its rounds from bench/load.py, what must be installed first
from bench/prerequisites.py, the `mesh up k8s` timing from bench/mesh_up.py and the
tables from bench/report.py.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import control_loop, costs, manifests, stores  # noqa: E402
from bench.load import Config, run_load, run_rounds  # noqa: E402
from bench.mesh_up import time_mesh_up  # noqa: E402
from bench.prerequisites import BenchError, ensure_httpbin, ensure_wrk  # noqa: E402
from bench.processes import REPO, Service, free_port, start_service, stopped_at_exit  # noqa: E402
from bench.report import HOP_CONNECTIONS, Hop, report, summary  # noqa: E402
from bench.servers import (  # noqa: E402
    backend_command,
    frontend_command,
    http_body,
    start_bare,
    start_envoy_floor,
    start_fastapi,
    start_httpbin,
    traced_backend_command,
)

ONE_BACKEND = REPO / "bench" / "one-backend"
MESH_UP_RUNS = 3


def _traced_mesh(base: type) -> type:
    """BASE whose Envoy traces as `mesh up` ships it (every request sampled, spans to the
    trace receiver, access log on) while its workloads export no spans, as the direct
    chain's do: so envoy-chain vs chain is Envoy's cost, tracing included."""

    class TracedEnvoyOnly(base):  # type: ignore[misc, valid-type]
        def _extra_env(self) -> dict[str, str]:
            return {**super()._extra_env(), "OTEL_TRACES_EXPORTER": "none"}

    return TracedEnvoyOnly


def _mesh_services(mesh: object) -> dict[str, Service]:
    """The local mesh's processes as bench Services (for CPU and RSS readings only)."""
    out: dict[str, Service] = {}
    for child in mesh.children:  # type: ignore[attr-defined]
        port = next((w.port for w in mesh.workloads if w.name == child.name), 0)  # type: ignore[attr-defined]
        out[child.name] = Service(child.name, child.popen, port, child.log_path)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", type=float, default=6.0, help="seconds per run (6)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds each (2)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 30) or not (1 <= args.rounds <= 9) or args.connections < 1:
        parser.error("--duration must be 1-30 s, --rounds 1-9, --connections >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ensure_wrk()
        gunicorn = ensure_httpbin()
        return _bench(args, gunicorn)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


def _bench(args: argparse.Namespace, gunicorn: Path) -> int:
    from mesh.runner import LocalMesh

    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: load average {load1:.2f} at start; other work skews the numbers")
    work = Path(tempfile.mkdtemp(prefix="taskmesh-bench-"))
    logs = work / "logs"
    quiet = {"LOG_LEVEL": "warning", "OTEL_TRACES_EXPORTER": "none"}
    os.environ.update(quiet)  # the local mesh's processes inherit it, as the direct ones get it
    base = {**quiet, "APP_VERSION": "v1", "TASKS_DB": str(work / "tasks.db")}
    services: list[Service] = []
    started_total = time.perf_counter()
    print("starting servers ...", flush=True)
    with stopped_at_exit(services):

        def add(name: str, argv: list[str], **env: str) -> Service:
            services.append(start_service(name, argv, env={**base, **env}, log_dir=logs))
            return services[-1]

        off = add("backend-off", backend_command(), INSTANCE_NAME="off", METRICS_ENABLED="0")
        be = add("backend", backend_command(), INSTANCE_NAME="metrics")
        spans = add("backend-spans", traced_backend_command(), INSTANCE_NAME="spans")
        fe = add("frontend", frontend_command(), INSTANCE_NAME="frontend", BACKEND_URL=be.url)
        body = http_body(be.url + "/api/tasks")
        bare = start_bare(body, logs)
        services.append(bare)
        floor = start_fastapi(body, logs)
        services.append(floor)
        envoy_floor = start_envoy_floor(body, logs)
        services.append(envoy_floor)
        httpbin = start_httpbin(gunicorn, logs)
        services.append(httpbin)

        mesh_started = time.perf_counter()
        with _traced_mesh(LocalMesh)(
            ONE_BACKEND,
            gateway_port=free_port(),
            admin_port=free_port(),
            service_ports={"backend-service": free_port(), "frontend-service": free_port()},
            state_dir=work / "mesh",
            traces_port=free_port(),
        ) as mesh:
            mesh_ready_s = time.perf_counter() - mesh_started
            in_mesh = _mesh_services(mesh)
            fe0, be0, envoy = in_mesh["frontend-0"], in_mesh["backend-v1-0"], in_mesh["envoy"]
            traces = in_mesh["traces"]
            configs = [
                Config("bare", "bare ASGI app, same JSON", bare.url + "/api/tasks", [bare]),
                Config("fastapi", "bare FastAPI endpoint serving the backend's JSON",
                       floor.url + "/api/tasks", [floor]),
                Config("envoy-floor", "Envoy answering the same JSON itself (direct_response)",
                       envoy_floor.url + "/api/tasks", [envoy_floor]),
                Config("httpbin", "httpbin /get, gunicorn + 1 gevent worker",
                       httpbin.url + "/get", [httpbin]),
                Config("off", "backend, metrics off", off.url + "/api/tasks", [off]),
                Config("metrics", "backend, default (metrics on, no exporter)",
                       be.url + "/api/tasks", [be]),
                Config("spans", "backend, every span exported", spans.url + "/api/tasks",
                       [spans]),
                Config("chain", "frontend -> backend", fe.url + "/api/tasks", [fe, be]),
                Config("envoy-chain", "frontend -> Envoy -> backend (local mesh, traced)",
                       mesh.instance_url("frontend-0") + "/api/tasks",
                       [fe0, envoy, be0, traces]),
                Config("gateway-chain", "gateway -> frontend -> Envoy -> backend (traced)",
                       mesh.gateway_url + "/api/tasks", [envoy, fe0, be0, traces]),
            ]  # fmt: skip
            hop_direct = mesh.instance_url("backend-v1-0") + "/api/tasks"
            hop_envoy = mesh.service_url("backend-service") + "/api/tasks"
            ready = {s.name: s.ready_s for s in services}
            print(
                f"load: wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds "
                f"(shuffled), median; warm-up {args.warmup:g}s each",
                flush=True,
            )
            run_rounds(
                configs,
                rounds=args.rounds,
                connections=args.connections,
                duration_s=args.duration,
                warmup_s=args.warmup,
            )
            hop = Hop()
            for _ in range(args.rounds):
                pair = [(hop.direct, hop_direct), (hop.via_envoy, hop_envoy)]
                for runs, url in random.sample(pair, 2):
                    runs.append(
                        run_load(url, connections=HOP_CONNECTIONS, duration_s=args.duration)
                    )
            print("Envoy hop at -c 1 done", flush=True)
            rss = {s.name: s.rss_mb() for s in services}
            rss.update({name: s.rss_mb() for name, s in in_mesh.items()})
    print("loading the backend on SQLite and on PostgreSQL (GET and POST) ...", flush=True)
    with stores.started(base, logs) as store_rows:
        stores.measure(store_rows, rounds=args.rounds, connections=args.connections,
                       duration_s=args.duration, warmup_s=args.warmup)  # fmt: skip
    print("timing `mesh up k8s` ...", flush=True)
    mesh_up = [time_mesh_up(work) for _ in range(MESH_UP_RUNS)]
    print("timing the manifest reads ...", flush=True)
    reads = manifests.measure()
    print("timing the control loop (saves, kills, applies and rollouts under load) ...", flush=True)
    loop_rows = control_loop.measure()
    missed = report(configs, hop, ready, mesh_ready_s, mesh_up, rss)
    missed += costs.report({c.key: c.runs for c in configs}, args.connections)
    missed += stores.report(store_rows)
    missed += manifests.report(reads)
    missed += control_loop.report(loop_rows)
    summary(missed)
    print(f"\nbench took {time.perf_counter() - started_total:.0f} s; logs in {logs}")
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
