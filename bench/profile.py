"""Flame graphs of the backend and the frontend under load (issue 16; docs/perf/README.md).

Starts the backend as shipped (metrics on, no span exporter) and the frontend
in front of it, as `make bench` does, loads each one's GET /api/tasks with
`wrk -t1 -cCONNECTIONS` and, while the load runs, samples the loaded process
with `py-spy record` into OUT/<service>.svg. py-spy is not a project
dependency: `.venv/bin/pip install py-spy` first.

    .venv/bin/python bench/profile.py [--duration 10] [--rate 100] [--out docs/perf]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/profile.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.processes import REPO, VENV_BIN, Service, start_service  # noqa: E402
from bench.servers import backend_command, frontend_command  # noqa: E402


def py_spy_argv(
    pid: int, out: Path, duration_s: int, rate: int, fmt: str = "flamegraph"
) -> list[str]:
    """The py-spy command that samples PID for DURATION_S into the SVG flame graph OUT."""
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or "py-spy"
    return [
        spy, "record", "--pid", str(pid), "--duration", str(duration_s), "--rate", str(rate),
        "--format", fmt, "--output", str(out),
    ]  # fmt: skip


def wrk_argv(url: str, connections: int, duration_s: int) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", url]


def profile(
    service: Service,
    url: str,
    out: Path,
    *,
    duration_s: int,
    rate: int,
    connections: int,
    fmt: str = "flamegraph",
) -> str:
    """Load URL (a second past the sampling on each side), sample SERVICE; wrk's output."""
    load = wrk_argv(url, connections, duration_s + 2)
    spy = py_spy_argv(service.popen.pid, out, duration_s, rate, fmt)
    print("$ " + shlex.join(load) + " &", flush=True)
    wrk = subprocess.Popen(load, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # sample the steady state, not the connection set-up
        print("$ " + shlex.join(spy), flush=True)
        subprocess.run(spy, check=True, stdout=subprocess.DEVNULL, timeout=duration_s + 60)
    finally:
        stdout, _ = wrk.communicate(timeout=duration_s + 60)
    return stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds sampled (10)")
    parser.add_argument("--rate", type=int, default=100, help="samples a second (100)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "perf", help="output folder")
    parser.add_argument(
        "--format", choices=["flamegraph", "raw"], default="flamegraph", help="SVG or folded stacks"
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("bench/profile.py: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="taskmesh-profile-"))
    env = {
        "LOG_LEVEL": "warning",
        "OTEL_TRACES_EXPORTER": "none",
        "APP_VERSION": "v1",
        "TASKS_DB": str(work / "tasks.db"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    be = start_service(
        "backend", backend_command(), env={**env, "INSTANCE_NAME": "be"}, log_dir=logs
    )
    fe: Service | None = None
    try:
        fe = start_service(
            "frontend",
            frontend_command(),
            env={**env, "INSTANCE_NAME": "fe", "BACKEND_URL": be.url},
            log_dir=logs,
        )
        for service in (be, fe):
            ext = "svg" if args.format == "flamegraph" else "txt"
            out = args.out / f"{service.name}.{ext}"
            stdout = profile(
                service,
                service.url + "/api/tasks",
                out,
                fmt=args.format,
                duration_s=args.duration,
                rate=args.rate,
                connections=args.connections,
            )
            rps = next((ln for ln in stdout.splitlines() if ln.startswith("Requests/sec")), "")
            print(f"{service.name}: {rps.strip()} -> {out}", flush=True)
    finally:
        for s in (fe, be):
            if s is not None:
                s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
