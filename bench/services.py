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

Other benchmarks can reuse `start_service`, `backend_command`, `frontend_command`
and `run_load`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


# -- starting servers ---------------------------------------------------------


def free_port() -> int:
    """A server port outside the ephemeral range (mesh.processes.free_port)."""
    from mesh.processes import free_port as pick

    return pick()


@dataclass
class Service:
    """A server process on 127.0.0.1 and how long it took to answer 200 on its ready path."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    ready_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (the uvicorn process serves; no reloader)."""
        with open(f"/proc/{self.popen.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB / 1024

    def cpu_s(self) -> float:
        with open(f"/proc/{self.popen.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def _http_status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log_dir: Path,
    ready_path: str = "/readyz",
    timeout_s: float = 30.0,
) -> Service:
    """Start argv with PORT/HOST set; return once ready_path answers 200 (polled every 2 ms)."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    start = time.perf_counter()
    with open(log_path, "wb") as out:
        popen = subprocess.Popen(
            list(argv),
            env=full_env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, popen, port, log_path)
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text(errors='replace')[-2000:]}")
        if _http_status(port, ready_path) == 200:
            service.ready_s = time.perf_counter() - start
            return service
        time.sleep(0.002)
    service.stop()
    raise TimeoutError(f"{name} not ready after {timeout_s} s; see {log_path}")


def backend_command() -> list[str]:
    return [str(VENV_BIN / "backend")]


def frontend_command() -> list[str]:
    return [str(VENV_BIN / "frontend")]


def traced_backend_command() -> list[str]:
    return [sys.executable, "-m", "bench.services", "serve-traced-backend"]


def bare_command(factory: str = "bench.services:bare_app") -> list[str]:
    """uvicorn serving FACTORY's app as the services serve theirs (uvloop, httptools, no log)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(REPO),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]


# -- servers that exist only for the benchmark ----------------------------------


def bare_app():  # noqa: ANN201 - an ASGI callable for `uvicorn --factory`
    """A raw ASGI app answering every request with BENCH_BODY (the backend's JSON)."""
    body = os.environ.get("BENCH_BODY", '{"tasks": []}').encode()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    payload = {"type": "http.response.body", "body": body}

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(payload)

    return app


def fastapi_command() -> list[str]:
    return bare_command("bench.services:fastapi_app")


def fastapi_app():  # noqa: ANN201 - a FastAPI app for `uvicorn --factory`
    """A bare FastAPI endpoint answering GET /api/tasks with BENCH_BODY: the framework's floor.

    Like the backend's handler it builds a JSONResponse from a dict on every
    request (serialisation included), with no middleware, store or telemetry.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    data = json.loads(os.environ.get("BENCH_BODY", '{"tasks": []}'))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/tasks")
    async def tasks() -> JSONResponse:
        return JSONResponse(data)

    return app


def serve_traced_backend() -> int:
    """The backend with every span exported through a BatchSpanProcessor to a counter."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from backend.app import create_app
    from backend.settings import BackendSettings
    from telemetry.logs import configure_logging
    from telemetry.serve import serve

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans):  # noqa: ANN001, ANN202
            self.count += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            print(json.dumps({"exported_spans": self.count}), flush=True)

    settings = BackendSettings.from_env()
    configure_logging(30, service="backend", version=settings.version, instance=settings.instance)
    app = create_app(settings, span_processor=BatchSpanProcessor(CountingExporter()))
    state = app.state.backend
    serve(
        app,
        host=settings.host,
        port=settings.port,
        on_drain=lambda: setattr(state, "ready", False),
        shutdown_delay_s=0,
    )
    return 0


# -- load ---------------------------------------------------------------------


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_req: float = 0.0
    #: each server's own CPU per request, by Service.name (they sum to cpu_us_per_req)
    cpu_us_by_process: dict[str, float] = field(default_factory=dict)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, connections: int, duration_s: float, script: Path | None = None) -> LoadResult:
    lua = ["-s", str(script)] if script else []  # e.g. a POST body (bench/stores.py)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency", *lua, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration_s + 60,
    ).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in sock.groups()) if sock else 0
    )
    return LoadResult(rps, latency("50"), latency("99"), total, errors)


async def _python_load(url: str, connections: int, duration_s: float) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    max_requests = 5_000_000  # bounded in count as well as time
    deadline = time.perf_counter() + duration_s
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) < max_requests:
                t0 = time.perf_counter()
                try:
                    async with s.get(url) as r:
                        await r.read()
                        if r.status >= 400:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return LoadResult(len(latencies) / elapsed, pick(0.5), pick(0.99), len(latencies), errors)


def run_load(
    url: str,
    *,
    connections: int = 32,
    duration_s: float = 10.0,
    servers: Sequence[Service] = (),
    script: Path | None = None,
) -> LoadResult:
    """Load `url` for duration_s at `connections`; CPU per request of each of `servers`.
    SCRIPT: a wrk Lua script (wrk only)."""
    cpu0 = [s.cpu_s() for s in servers]
    if shutil.which("wrk"):
        result = _wrk(url, connections, duration_s, script)
    elif script is not None:
        raise RuntimeError("a scripted load needs wrk (apt-get install wrk)")
    else:
        result = asyncio.run(_python_load(url, connections, duration_s))
    spent = [s.cpu_s() - before for s, before in zip(servers, cpu0, strict=True)]
    if result.requests:
        for s, cpu in zip(servers, spent, strict=True):
            result.cpu_us_by_process[s.name] = cpu / result.requests * 1e6
        result.cpu_us_per_req = sum(spent) / result.requests * 1e6
    return result


class Loaded(Protocol):
    """A configuration the round loop loads: its URL, the processes it bills, its runs."""

    url: str
    servers: list[Service]
    runs: list[LoadResult]


def run_rounds(
    configs: Sequence[Loaded],
    *,
    rounds: int,
    connections: int,
    duration_s: float,
    warmup_s: float,
) -> None:
    """Warm each config up, then ROUNDS rounds of every config in a shuffled order.

    Each run is appended to its config's `runs`, so round i of every config
    shares the machine's state (ratios are taken per round).
    """
    if warmup_s:
        for cfg in configs:
            run_load(cfg.url, connections=connections, duration_s=warmup_s)
    for round_no in range(rounds):
        for cfg in random.sample(list(configs), len(configs)):
            cfg.runs.append(
                run_load(
                    cfg.url, connections=connections, duration_s=duration_s, servers=cfg.servers
                )
            )
        print(f"round {round_no + 1}/{rounds} done", flush=True)


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


@contextlib.contextmanager
def _started(services: list[Service]) -> Iterator[list[Service]]:
    try:
        yield services
    finally:
        for s in reversed(services):
            s.stop()


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
    with _started(services):
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
        if _http_status(port, "/") == 200:
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
