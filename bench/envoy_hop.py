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
  proto-spans shipped with the spans encoded as Zipkin protobuf instead of JSON (istiod
              writes JSON; the receiver takes JSON only and answers 4xx: the encoding's
              cost is what this shows)

    .venv/bin/python bench/envoy_hop.py [--duration 4] [--rounds 3] [-c 32]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # `python bench/envoy_hop.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import LoadResult, run_load  # noqa: E402
from bench.processes import REPO, Service, free_port, http_status, start_service  # noqa: E402
from bench.servers import backend_command  # noqa: E402

ONE_BACKEND = Path(__file__).resolve().parent / "one-backend"
SERVICE = "backend-service"
V1 = "backend-v1-0"

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


def proto_spans(bootstrap: Bootstrap) -> None:
    for hcm in _hcms(bootstrap):
        if "tracing" in hcm:
            hcm["tracing"]["provider"]["typed_config"]["collector_endpoint_version"] = "HTTP_PROTO"


VARIANTS: dict[str, Callable[[Bootstrap], None]] = {
    "shipped": lambda _: None,
    "no-log": no_log,
    "untraced": untraced,
    "sampled-1pct": sampled_1pct,
    "proto-spans": proto_spans,
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


def start_envoy(name: str, boot: Bootstrap, port: int, work: Path) -> Service:
    from mesh import envoy

    config = work / f"envoy-{name}.yaml"
    config.write_text(yaml.safe_dump(boot, sort_keys=False))
    admin = boot["admin"]["address"]["socket_address"]["port_value"]
    return start_on(f"envoy-{name}", envoy.command(config, base_id=admin), port, work)


def start_on(
    name: str,
    argv: list[str],
    port: int,
    work: Path,
    ready_path: str = "/api/tasks",
    timeout_s: float = 30.0,
) -> Service:
    """Start ARGV, which binds PORT itself; return once READY_PATH answers 200."""
    (work / "logs").mkdir(parents=True, exist_ok=True)
    log_path = work / "logs" / f"{name}.log"
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )
    service = Service(name, popen, port, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text(errors='replace')[-2000:]}")
        if http_status(port, ready_path) == 200:
            return service
        time.sleep(0.01)  # readiness poll
    service.stop()
    raise TimeoutError(f"{name} not ready after {timeout_s} s; see {log_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/envoy_hop.py", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", type=int, default=4, help="seconds per run (4)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (32)")
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 30) or not (1 <= args.rounds <= 9) or args.connections < 1:
        parser.error("--duration must be 1-30 s, --rounds 1-9, --connections >= 1")
    from mesh.traces.launch import traces_command

    work = Path(tempfile.mkdtemp(prefix="taskmesh-envoy-hop-"))
    env = {"LOG_LEVEL": "warning", "OTEL_TRACES_EXPORTER": "none", "APP_VERSION": "v1"}
    services: list[Service] = []
    try:
        be = start_service(
            V1,
            backend_command(),
            log_dir=work / "logs",
            env={**env, "INSTANCE_NAME": V1, "TASKS_DB": str(work / "t.db")},
        )
        services.append(be)
        traces_port = free_port()
        services.append(
            start_on(
                "traces", traces_command(traces_port), traces_port, work, ready_path="/api/traces"
            )
        )
        base = translated(be.port, traces_port)
        envoys = {}
        for name in VARIANTS:
            port = free_port()
            boot = variant(base, name, admin_port=free_port(), listener_port=port)
            envoys[name] = start_envoy(name, boot, port, work)
            services.append(envoys[name])
        runs: dict[str, list[LoadResult]] = {name: [] for name in VARIANTS}
        for e in envoys.values():
            run_load(e.url + "/api/tasks", connections=args.connections, duration_s=2)
        for _ in range(args.rounds):
            for name in random.sample(list(VARIANTS), len(VARIANTS)):
                e = envoys[name]
                runs[name].append(
                    run_load(
                        e.url + "/api/tasks",
                        connections=args.connections,
                        duration_s=args.duration,
                        servers=[e, be],
                    )
                )
        report(runs, args, os.getloadavg()[0])
    finally:
        for s in reversed(services):
            with contextlib.suppress(Exception):
                s.stop()
    return 0


def report(runs: dict[str, list[LoadResult]], args: argparse.Namespace, load1: float) -> None:
    print(
        f"\nOne Envoy hop (outbound {SERVICE} -> one backend), wrk -t1 -c{args.connections} "
        f"-d{args.duration}s, median of {args.rounds} shuffled rounds; load average {load1:.1f}"
    )
    print("\n| variant | req/s | Envoy CPU us/req | backend CPU us/req |")
    print("|---|---:|---:|---:|")
    for name, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        envoy_us = statistics.median(r.cpu_us_by_process[f"envoy-{name}"] for r in results)
        be_us = statistics.median(r.cpu_us_by_process[V1] for r in results)
        print(f"| {name} | {rps:,.0f} | {envoy_us:,.0f} | {be_us:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
