"""Where one Envoy hop's CPU goes (issue 16): the local mesh's Envoy under config variants.

The Envoy binary ships stripped, so `perf` names no functions and it has no CPU
profiler built in; this measures instead. It translates bench/one-backend as `mesh up`
does, starts one real backend (v1) and one Envoy per variant (each with
`--concurrency 1`, as mesh/envoy.py runs it) plus the trace receiver, then loads the
`backend-service` outbound listener of each with `wrk -t1 -cCONNECTIONS` in shuffled
rounds and prints Envoy's CPU per request (median of rounds; all variants share the
machine's state within a round):

  shipped     as `mesh up` runs it: Istio's access log on stdout, every request traced
  no-log      shipped without the access log
  untraced    shipped without tracing (`mesh up --no-traces`)
  sampled-1pct shipped at Istio's default rate, 1 % of requests traced: what a Telemetry
              with `tracing[].randomSamplingPercentage: 1` translates to
  json-spans  shipped with the spans encoded as Zipkin v2 JSON, as istiod writes them
              (`HTTP_JSON`); the local mesh sends protobuf (mesh/translate/tracing.py)
  bare-proxy  untraced, no access log, and none of what Istio adds to a plain proxy: the
              router filter alone (no fault filter), no retry policy, no request id, no
              path normalisation, round robin, no outlier detection or circuit breakers;
              what is left is Envoy proxying HTTP/1.1, the cost no config removes
  floor       Envoy answering the backend's JSON itself (bench/servers.py): the
              yardstick; "x Envoy floor" is each variant's CPU over it, per round

    .venv/bin/python bench/envoy_hop.py [--duration 4] [--rounds 3] [-c 32]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/envoy_hop.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import LoadResult, run_load  # noqa: E402
from bench.processes import Service, free_port, start_service, stopped_at_exit  # noqa: E402
from bench.servers import (  # noqa: E402
    backend_command,
    http_body,
    start_envoy,
    start_envoy_floor,
)

ONE_BACKEND = Path(__file__).resolve().parent / "one-backend"
SERVICE = "backend-service"
V1 = "backend-v1-0"
#: the row of Envoy answering the backend's JSON itself (bench/servers.py): the yardstick
FLOOR = "floor"

Bootstrap = dict[str, Any]


def _hcms(bootstrap: Bootstrap) -> Iterator[dict[str, Any]]:
    for listener in bootstrap["static_resources"]["listeners"]:
        for chain in listener.get("filter_chains") or []:
            for flt in chain.get("filters") or []:
                if flt.get("name") == "envoy.filters.network.http_connection_manager":
                    yield flt["typed_config"]


def no_log(bootstrap: Bootstrap) -> None:
    for hcm in _hcms(bootstrap):
        hcm.pop("access_log", None)


def untraced(bootstrap: Bootstrap) -> None:
    for hcm in _hcms(bootstrap):
        hcm.pop("tracing", None)


def sampled_1pct(bootstrap: Bootstrap) -> None:
    """`random_sampling` 1, as mesh/translate/telemetry.py writes for a Telemetry at 1 %."""
    for hcm in _hcms(bootstrap):
        if "tracing" in hcm:
            hcm["tracing"]["random_sampling"] = {"value": 1.0}


def json_spans(bootstrap: Bootstrap) -> None:
    for hcm in _hcms(bootstrap):
        if "tracing" in hcm:
            hcm["tracing"]["provider"]["typed_config"]["collector_endpoint_version"] = "HTTP_JSON"


def bare_proxy(bootstrap: Bootstrap) -> None:
    untraced(bootstrap)
    no_log(bootstrap)
    for hcm in _hcms(bootstrap):
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"].endswith(".router")]
        hcm["generate_request_id"] = False
        hcm.pop("request_id_extension", None)
        hcm["normalize_path"] = False
        for host in hcm["route_config"]["virtual_hosts"]:
            host.pop("include_request_attempt_count", None)
            for route in host["routes"]:
                route["route"].pop("retry_policy", None)
    for cluster in bootstrap["static_resources"]["clusters"]:
        cluster["lb_policy"] = "ROUND_ROBIN"
        cluster.pop("outlier_detection", None)
        cluster.pop("circuit_breakers", None)


VARIANTS: dict[str, Callable[[Bootstrap], None]] = {
    "shipped": lambda _: None,
    "no-log": no_log,
    "untraced": untraced,
    "sampled-1pct": sampled_1pct,
    "json-spans": json_spans,
    "bare-proxy": bare_proxy,
}


def translated(backend_port: int, traces_port: int) -> Bootstrap:
    """bench/one-backend as the local mesh translates it, v1's one replica on BACKEND_PORT
    (the other replicas on ports nothing listens on: they get no traffic)."""
    from mesh.manifests import load
    from mesh.translate import local_placement, translate

    manifests = load(ONE_BACKEND)
    ports = {i: free_port() for d in manifests.deployments for i in d.instance_names()}
    ports[V1] = backend_port
    placement = local_placement(manifests, ports, traces_port=traces_port)
    return translate(manifests, placement)


def variant(base: Bootstrap, name: str, *, admin_port: int, listener_port: int) -> Bootstrap:
    """BASE changed by variant NAME, with its own admin port, only the SERVICE outbound
    listener (on LISTENER_PORT) and no gateway."""
    boot = copy.deepcopy(base)
    boot["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listeners = boot["static_resources"]["listeners"]
    (outbound,) = [lst for lst in listeners if lst["name"].startswith(f"outbound_{SERVICE}.")]
    outbound["address"]["socket_address"]["port_value"] = listener_port
    boot["static_resources"]["listeners"] = [outbound]
    VARIANTS[name](boot)
    return boot


def start_backend_and_receiver(work: Path, services: list[Service]) -> tuple[Service, int]:
    """The one real backend a hop goes to (v1, its store under WORK) and the trace receiver
    its spans go to, both added to SERVICES (stopped with them); the backend and the
    receiver's port."""
    from mesh.traces.launch import traces_command

    logs = work / "logs"
    env = {"LOG_LEVEL": "warning", "OTEL_TRACES_EXPORTER": "none", "APP_VERSION": "v1"}
    be = start_service(
        V1,
        backend_command(),
        log_dir=logs,
        env={**env, "INSTANCE_NAME": V1, "TASKS_DB": str(work / "t.db")},
    )
    services.append(be)
    traces_port = free_port()
    services.append(
        start_service(
            "traces",
            traces_command(traces_port),
            env={},
            log_dir=logs,
            ready_path="/api/traces",
            port=traces_port,
        )
    )
    return be, traces_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/envoy_hop.py", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", type=int, default=4, help="seconds per run (4)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (32)")
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 30) or not (1 <= args.rounds <= 9) or args.connections < 1:
        parser.error("--duration must be 1-30 s, --rounds 1-9, --connections >= 1")
    work = Path(tempfile.mkdtemp(prefix="taskmesh-envoy-hop-"))
    logs = work / "logs"
    with stopped_at_exit([]) as services:
        be, traces_port = start_backend_and_receiver(work, services)
        base = translated(be.port, traces_port)
        envoys = {}
        for name in VARIANTS:
            port = free_port()
            boot = variant(base, name, admin_port=free_port(), listener_port=port)
            envoys[name] = start_envoy(f"envoy-{name}", boot, port, logs, ready_path="/api/tasks")
            services.append(envoys[name])
        envoys[FLOOR] = start_envoy_floor(http_body(be.url + "/api/tasks"), logs)
        services.append(envoys[FLOOR])
        runs: dict[str, list[LoadResult]] = {name: [] for name in envoys}
        for e in envoys.values():
            run_load(e.url + "/api/tasks", connections=args.connections, duration_s=2)
        for _ in range(args.rounds):
            for name in random.sample(list(envoys), len(envoys)):
                e = envoys[name]
                runs[name].append(
                    run_load(
                        e.url + "/api/tasks",
                        connections=args.connections,
                        duration_s=args.duration,
                        servers=[e] if name == FLOOR else [e, be],
                    )
                )
        report(runs, args, os.getloadavg()[0])
    return 0


def report(runs: dict[str, list[LoadResult]], args: argparse.Namespace, load1: float) -> None:
    """The table: each variant's Envoy CPU per request, and as a multiple of the floor's in
    the same round (median of rounds)."""
    print(
        f"\nOne Envoy hop (outbound {SERVICE} -> one backend), wrk -t1 -c{args.connections} "
        f"-d{args.duration}s, median of {args.rounds} shuffled rounds; load average {load1:.1f}"
    )
    print("\n| variant | req/s | Envoy CPU us/req | x Envoy floor | backend CPU us/req |")
    print("|---|---:|---:|---:|---:|")
    floor = runs[FLOOR]
    for name, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        envoy_us = statistics.median(envoy_cpu(r) for r in results)
        times = statistics.median(
            envoy_cpu(r) / envoy_cpu(f) for r, f in zip(results, floor, strict=True)
        )
        be = (
            "-"
            if name == FLOOR
            else f"{statistics.median(r.cpu_us_by_process[V1] for r in results):,.0f}"
        )
        print(f"| {name} | {rps:,.0f} | {envoy_us:,.0f} | {times:.1f} | {be} |")


def envoy_cpu(run: LoadResult) -> float:
    """The Envoy's CPU per request in RUN (its process is the one named envoy-*)."""
    return next(us for name, us in run.cpu_us_by_process.items() if name.startswith("envoy-"))


if __name__ == "__main__":
    sys.exit(main())
