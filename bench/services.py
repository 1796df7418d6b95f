"""Throughput of the two services, side by side (`make bench`; never run by the tests).

Configurations, each one uvicorn process (uvloop + httptools, no access log):

  bare     a raw ASGI app returning the same JSON as the backend's /api/tasks
  off      backend /api/tasks, request metrics off, no tracing
  metrics  backend /api/tasks as shipped: metrics on, tracing exporter off (the default)
  spans    backend /api/tasks, every span exported (BatchSpanProcessor -> counting exporter)
  chain    frontend /api/tasks -> backend (both as shipped)

Method (as in reference/perf-baseline.md): all servers are started at once,
each gets a warm-up, then ROUNDS rounds run every configuration in a shuffled
order with `wrk -t1 -c32 -dDURATION --latency` (a bounded Python load loop if
wrk is missing). Tables show the median round; ratios are the median of
per-round ratios, so each compares runs from the same round.

Targets on the 2-core machine: metrics >= 0.90 x off; spans >= 0.60 x off;
chain >= 0.40 x metrics; every service ready within 1.5 s of process start and
under 80 MB RSS after the run.

Its parts serve every benchmark: the processes (bench/processes.py), what is
started (bench/servers.py) and the load (bench/load.py).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/services.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import LoadResult, run_rounds  # noqa: E402
from bench.processes import (  # noqa: E402
    REPO,
    Service,
    free_port,
    http_status,
    start_service,
    stopped_at_exit,
)
from bench.servers import (  # noqa: E402
    backend_command,
    bare_command,
    frontend_command,
    serve_traced_backend,
    traced_backend_command,
)

# -- the benchmark --------------------------------------------------------------


@dataclass
class Config:
    key: str
    label: str
    servers: list[Service]
    url: str
    runs: list[LoadResult] = field(default_factory=list)


def _median_run(runs: list[LoadResult]) -> LoadResult:
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def _ratio(cfg: Config, base: Config) -> float:
    return statistics.median(a.rps / b.rps for a, b in zip(cfg.runs, base.runs, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/services.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "serve-traced-backend"]
    )
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per config (2)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.command == "serve-traced-backend":
        return serve_traced_backend()
    if args.duration <= 0 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --rounds and --connections must be positive")

    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(
            f"warning: load average {load1:.2f} before the start; other work on these "
            "2 cores skews every number below",
            flush=True,
        )
    work = Path(tempfile.mkdtemp(prefix="taskmesh-bench-"))
    logs = work / "logs"
    base_env = {
        "APP_VERSION": "v1",
        "TASKS_DB": str(work / "tasks.db"),
        "LOG_LEVEL": "warning",
        "OTEL_TRACES_EXPORTER": "none",
    }
    services: list[Service] = []
    with stopped_at_exit(services):
        be_off = start_service(
            "backend-off",
            backend_command(),
            log_dir=logs,
            env={**base_env, "INSTANCE_NAME": "off", "METRICS_ENABLED": "0"},
        )
        services.append(be_off)
        be = start_service(
            "backend", backend_command(), log_dir=logs, env={**base_env, "INSTANCE_NAME": "metrics"}
        )
        services.append(be)
        be_spans = start_service(
            "backend-spans",
            traced_backend_command(),
            log_dir=logs,
            env={**base_env, "INSTANCE_NAME": "spans"},
        )
        services.append(be_spans)
        fe = start_service(
            "frontend",
            frontend_command(),
            log_dir=logs,
            env={**base_env, "INSTANCE_NAME": "frontend", "BACKEND_URL": be.url},
        )
        services.append(fe)
        body = _fetch(be.url + "/api/tasks")
        bare_port = free_port()
        bare_argv = [a.replace("{port}", str(bare_port)) for a in bare_command()]
        bare = _start_fixed_port("bare", bare_argv, bare_port, {"BENCH_BODY": body}, logs)
        services.append(bare)

        configs = [
            Config("bare", "bare ASGI app, same JSON", [bare], bare.url + "/api/tasks"),
            Config("off", "backend, instrumentation off", [be_off], be_off.url + "/api/tasks"),
            Config(
                "metrics", "backend, metrics on, tracing off (default)", [be], be.url + "/api/tasks"
            ),
            Config(
                "spans", "backend, every span exported", [be_spans], be_spans.url + "/api/tasks"
            ),
            Config("chain", "frontend -> backend chain", [fe, be], fe.url + "/api/tasks"),
        ]
        tool = "wrk -t1" if shutil.which("wrk") else "python aiohttp loop"
        print(
            f"load: {tool} -c{args.connections} -d{args.duration:g}s, "
            f"{args.rounds} rounds, median; warm-up {args.warmup:g}s each",
            flush=True,
        )
        run_rounds(
            configs,
            rounds=args.rounds,
            connections=args.connections,
            duration_s=args.duration,
            warmup_s=args.warmup,
        )
        rss = {s.name: s.rss_mb() for s in services}
    spans_log = be_spans.log_path.read_text(errors="replace")
    exported = re.findall(r'"exported_spans": (\d+)', spans_log)
    return _report(configs, services, rss, exported, args.strict)


def _fetch(url: str) -> str:
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=5)
    conn.request("GET", "/" + rest)
    return conn.getresponse().read().decode()


def _start_fixed_port(
    name: str, argv: list[str], port: int, env: dict[str, str], logs: Path
) -> Service:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    start = time.perf_counter()
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, popen, port, log_path)
    while time.perf_counter() - start < 30:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text(errors='replace')[-2000:]}")
        if http_status(port, "/") == 200:
            service.ready_s = time.perf_counter() - start
            return service
        time.sleep(0.002)
    service.stop()
    raise TimeoutError(f"{name} not ready; see {log_path}")


def _report(
    configs: list[Config],
    services: list[Service],
    rss: dict[str, float],
    exported: list[str],
    strict: bool,
) -> int:
    by_key = {c.key: c for c in configs}
    ratios = {
        "bare": ("off", None),
        "off": ("off", None),
        "metrics": ("off", 0.90),
        "spans": ("off", 0.60),
        "chain": ("metrics", 0.40),
    }
    print()
    print("| config | req/s | p50 ms | p99 ms | CPU us/req | ratio | target | errors |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    misses: list[str] = []
    for cfg in configs:
        run = _median_run(cfg.runs)
        base_key, target = ratios[cfg.key]
        ratio = _ratio(cfg, by_key[base_key])
        verdict = ""
        if target is not None:
            ok = ratio >= target
            verdict = f">= {target:.2f} x {base_key}: {'met' if ok else 'MISSED'}"
            if not ok:
                misses.append(f"{cfg.key} ratio {ratio:.2f} < {target:.2f}")
        errors = sum(r.errors for r in cfg.runs)
        print(
            f"| {cfg.label} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
            f"{run.cpu_us_per_req:,.0f} | {ratio:.2f} x {base_key} | {verdict} | {errors} |"
        )
    print()
    print("| process | ready after start | RSS after the run | target |")
    print("|---|---:|---:|---|")
    for s in services:
        if s.name == "bare":
            continue
        ok = s.ready_s <= 1.5 and rss[s.name] < 80
        if not ok:
            misses.append(f"{s.name}: ready {s.ready_s:.2f} s, RSS {rss[s.name]:.0f} MB")
        print(
            f"| {s.name} | {s.ready_s * 1000:,.0f} ms | {rss[s.name]:.1f} MB | "
            f"ready <= 1.5 s, RSS < 80 MB: {'met' if ok else 'MISSED'} |"
        )
    served = sum(r.requests for r in by_key["spans"].runs)
    if exported:
        print(
            f"\nspans exported by the 'spans' backend: {exported[-1]} "
            f"(it served >= {served:,} measured requests, plus warm-up)"
        )
    if misses:
        print("\ntargets missed: " + "; ".join(misses))
    else:
        print("\nall targets met")
    return 1 if (strict and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
