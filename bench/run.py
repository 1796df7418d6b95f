"""`make bench`: one run, one table - our services next to a bare ASGI app, httpbin and Envoy.

Configurations, all on 127.0.0.1, each loaded by `wrk -t1 -c32` for DURATION:

  bare           a raw ASGI app answering the backend's JSON (the ceiling)
  fastapi        a bare FastAPI endpoint answering the same JSON (the framework's floor)
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
bench/processes.py, wrk and its rounds from bench/load.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import control_loop, costs, manifests, stores  # noqa: E402
from bench.load import LoadResult, run_load, run_rounds  # noqa: E402
from bench.processes import (  # noqa: E402
    CLK_TCK,
    PAGE_KB,
    REPO,
    VENV_BIN,
    Service,
    free_port,
    start_service,
)
from bench.servers import (  # noqa: E402
    backend_command,
    bare_command,
    fastapi_command,
    frontend_command,
    traced_backend_command,
)

ONE_BACKEND = REPO / "bench" / "one-backend"
# httpbin's own venv (the Makefile's HTTPBIN_VENV); BENCH_HTTPBIN_VENV overrides it
HTTPBIN_VENV = Path(os.environ.get("BENCH_HTTPBIN_VENV", REPO / ".venv-httpbin"))
READY_TARGET_S = 1.5
MESH_UP_TARGET_S = 5.0
RSS_TARGET_MB = 80.0
MESH_UP_RUNS = 3
HOP_CONNECTIONS = 1
# Services of ours held to the readiness and memory targets (bare, httpbin and Envoy are shown).
OURS = ("backend-off", "backend", "backend-spans", "frontend", "frontend-0", "backend-v1-0")


class BenchError(Exception):
    """Something the bench needs is missing: one line for the user, exit status 2."""


# --------------------------------------------------------------------------- tools


def ensure_wrk(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> str:
    """Path of wrk, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk ...", flush=True)
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    try:
        proc = run(
            [*prefix, "apt-get", "install", "-y", "-q", "wrk"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"cannot install wrk ({exc}); install it: apt-get install -y wrk") from exc
    found = shutil.which("wrk")
    if proc.returncode != 0 or not found:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"apt-get install -y wrk failed ({last[0]}); install wrk and re-run")
    return found


def ensure_httpbin(venv: Path = HTTPBIN_VENV) -> Path:
    """gunicorn of VENV, the venv `make bench` installs httpbin, gunicorn and gevent into.

    Not this venv: httpbin pins greenlet < 3, which playwright in the test venv outgrew.
    """
    gunicorn = venv / "bin" / "gunicorn"
    python = venv / "bin" / "python"
    if not (gunicorn.exists() and python.exists()):
        raise BenchError(f"no httpbin venv at {venv}: run `make bench` (it creates it)")
    probe = subprocess.run(
        [str(python), "-c", "import httpbin, gevent"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{venv} cannot import httpbin and gevent ({last}): run `make bench`")
    return gunicorn


def httpbin_command(gunicorn: Path) -> list[str]:
    """httpbin as its container runs it: gunicorn, one gevent worker, no access log."""
    return [
        str(gunicorn), "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}",
        "--log-level", "warning", "httpbin:app",
    ]  # fmt: skip


def on_port(argv: list[str]) -> list[str]:
    """ARGV through `sh -c exec`, "{port}" replaced by the PORT that start_service sets.

    For servers that take their port only as an argument (uvicorn's CLI, gunicorn);
    `exec` keeps the server's pid the one start_service watches.
    """

    def word(arg: str) -> str:
        return '"$PORT"'.join(shlex.quote(part) if part else "" for part in arg.split("{port}"))

    return ["/bin/sh", "-c", "exec " + " ".join(word(a) for a in argv)]


class ProcessTree(Service):
    """A Service whose CPU and memory include its children (gunicorn's worker serves)."""

    def pids(self) -> list[int]:
        found, i = [self.popen.pid], 0
        while i < len(found):
            pid = found[i]
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
                found += [int(p) for p in text.split()]
            i += 1
        return found

    def rss_mb(self) -> float:
        return sum(_statm_rss_mb(pid) for pid in self.pids())

    def cpu_s(self) -> float:
        return sum(_cpu_s(pid) for pid in self.pids())


def _statm_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


def start_httpbin(gunicorn: Path, log_dir: Path) -> Service:
    s = start_service(
        "httpbin", on_port(httpbin_command(gunicorn)), env={}, log_dir=log_dir, ready_path="/get"
    )
    return ProcessTree(s.name, s.popen, s.port, s.log_path, s.ready_s)


def start_bare(body: str, log_dir: Path) -> Service:
    return start_service(
        "bare", on_port(bare_command()), env={"BENCH_BODY": body}, log_dir=log_dir, ready_path="/"
    )


def start_fastapi(body: str, log_dir: Path) -> Service:
    return start_service(
        "fastapi",
        on_port(fastapi_command()),
        env={"BENCH_BODY": body},
        log_dir=log_dir,
        ready_path="/api/tasks",
    )


# --------------------------------------------------------------------------- configurations


@dataclass
class Config:
    key: str
    label: str
    url: str
    servers: list[Service]
    runs: list[LoadResult] = field(default_factory=list)

    def median_run(self) -> LoadResult:
        return sorted(self.runs, key=lambda r: r.rps)[len(self.runs) // 2]


def ratio(a: Config, b: Config) -> float:
    """Median of per-round throughput ratios a/b."""
    return statistics.median(x.rps / y.rps for x, y in zip(a.runs, b.runs, strict=True))


@dataclass
class Target:
    label: str
    numerator: str
    denominator: str
    minimum: float | None  # None: shown, no target


TARGETS = [
    Target("backend (default) vs httpbin", "metrics", "httpbin", 2.0),
    Target("metrics on vs off", "metrics", "off", 0.90),
    Target("every span exported vs off", "spans", "off", 0.60),
    Target("frontend->backend chain vs backend", "chain", "metrics", 0.40),
    Target("chain via Envoy vs direct chain", "envoy-chain", "chain", 0.80),
    Target("gateway->frontend->Envoy->backend vs direct chain", "gateway-chain", "chain", 0.70),
    Target("backend (default) vs bare ASGI", "metrics", "bare", None),
    Target("backend (default) vs bare FastAPI endpoint", "metrics", "fastapi", None),
]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --------------------------------------------------------------------------- mesh up timing


def time_mesh_up(work: Path, attempts: int = 2) -> float:
    """Seconds from starting `mesh up k8s` (free ports) to its "ready" banner line.

    A port picked free here can be taken before `mesh up` binds it (by another
    process, or by one of the instance ports the runner picks itself): that one
    failure is retried with new ports.
    """
    for attempt in range(attempts):
        try:
            return _time_mesh_up(work)
        except BenchError as exc:
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _time_mesh_up(work: Path, timeout_s: float = 60.0) -> float:
    ports = [free_port() for _ in range(5)]
    argv = [
        str(VENV_BIN / "mesh"), "up", "k8s", "--quiet",
        "--gateway-port", str(ports[0]), "--admin-port", str(ports[1]),
        "--service-port", f"backend-service={ports[2]}",
        "--service-port", f"frontend-service={ports[3]}",
        "--traces-port", str(ports[4]),
        "--state-dir", str(work / f"mesh-up-{ports[1]}"),
    ]  # fmt: skip
    out_path = work / f"mesh-up-{ports[1]}.out"
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while time.perf_counter() - start < timeout_s:
            if "workloads and Envoy ready" in out_path.read_text(errors="replace"):
                return time.perf_counter() - start
            if proc.poll() is not None:
                break
            time.sleep(0.005)  # output poll interval: the measurement's resolution
        raise BenchError(f"mesh up k8s not ready: {out_path.read_text(errors='replace')[-500:]}")
    finally:
        # SIGTERM makes `mesh up` stop every process it started
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------- the run


@dataclass
class Hop:
    direct: list[LoadResult] = field(default_factory=list)
    via_envoy: list[LoadResult] = field(default_factory=list)

    def added_ms(self, pick: Callable[[LoadResult], float]) -> float:
        return statistics.median(
            pick(v) - pick(d) for d, v in zip(self.direct, self.via_envoy, strict=True)
        )


@contextlib.contextmanager
def stopped_at_exit(services: list[Service]) -> Iterator[list[Service]]:
    try:
        yield services
    finally:
        for s in reversed(services):
            s.stop()


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
        body = _body(be.url + "/api/tasks")
        bare = start_bare(body, logs)
        services.append(bare)
        floor = start_fastapi(body, logs)
        services.append(floor)
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


def _body(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=5.0, trust_env=False).text


# --------------------------------------------------------------------------- report


def report(
    configs: list[Config],
    hop: Hop,
    ready: dict[str, float],
    mesh_ready_s: float,
    mesh_up: list[float],
    rss: dict[str, float],
) -> list[str]:
    """Print every table; return the missed targets."""
    by_key = {c.key: c for c in configs}
    missed: list[str] = []
    print("\n| configuration | req/s | p50 ms | p99 ms | CPU us/req | by process | errors |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for cfg in configs:
        run = cfg.median_run()
        errors = sum(r.errors for r in cfg.runs)
        print(
            f"| {cfg.label} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
            f"{run.cpu_us_per_req:,.0f} | {costs.by_process(run)} | {errors} |"
        )

    print("\n| ratio (req/s, median of per-round ratios) | value | target | result |")
    print("|---|---:|---|---|")
    for t in TARGETS:
        value = ratio(by_key[t.numerator], by_key[t.denominator])
        if t.minimum is None:
            print(f"| {t.label} | {value:.3f} | - | - |")
            continue
        ok = value >= t.minimum
        if not ok:
            missed.append(f"{t.label} {value:.3f} < {t.minimum:.2f}")
        print(f"| {t.label} | {value:.3f} | >= {t.minimum:.2f} | {verdict(ok)} |")

    d, v = hop.direct, hop.via_envoy
    print(f"\n| one Envoy hop, -c {HOP_CONNECTIONS} (median of rounds) | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    print(f"| backend direct | {_med(d, 'p50_ms'):.3f} | {_med(d, 'p99_ms'):.3f} |")
    print(f"| backend through Envoy | {_med(v, 'p50_ms'):.3f} | {_med(v, 'p99_ms'):.3f} |")
    print(
        f"| added by the hop | {hop.added_ms(lambda r: r.p50_ms):.3f} | "
        f"{hop.added_ms(lambda r: r.p99_ms):.3f} |"
    )

    print("\n| start-up | seconds | target | result |")
    print("|---|---:|---|---|")
    for name, seconds in ready.items():
        if name in OURS:
            ok = seconds < READY_TARGET_S
            if not ok:
                missed.append(f"{name} ready in {seconds:.2f} s")
            print(f"| {name} ready | {seconds:.2f} | < {READY_TARGET_S:g} | {verdict(ok)} |")
        else:
            print(f"| {name} ready | {seconds:.2f} | - | - |")
    up = statistics.median(mesh_up)
    ok = up < MESH_UP_TARGET_S
    if not ok:
        missed.append(f"mesh up k8s ready in {up:.2f} s")
    runs = ", ".join(f"{s:.2f}" for s in mesh_up)
    print(f"| `mesh up k8s` to its ready banner (median of {runs}) | {up:.2f} | "
          f"< {MESH_UP_TARGET_S:g} | {verdict(ok)} |")  # fmt: skip
    print(f"| local mesh of bench/one-backend, in-process | {mesh_ready_s:.2f} | - | - |")

    print("\n| resident memory after the load | MB | target | result |")
    print("|---|---:|---|---|")
    for name, mb in rss.items():
        if name in OURS:
            ok = mb < RSS_TARGET_MB
            if not ok:
                missed.append(f"{name} RSS {mb:.0f} MB")
            print(f"| {name} | {mb:.1f} | < {RSS_TARGET_MB:g} | {verdict(ok)} |")
        else:
            print(f"| {name} | {mb:.1f} | - | - |")

    return missed


def summary(missed: list[str]) -> None:
    """The last line of the bench: every missed target of every table, or none."""
    print("\n" + ("targets missed: " + "; ".join(missed) if missed else "every target met"))


def _med(runs: list[LoadResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


if __name__ == "__main__":
    sys.exit(main())
