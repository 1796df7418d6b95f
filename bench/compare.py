"""Before/after in one run: the backend of a git revision next to this tree's (issue 16).

Checks REV out into a temporary worktree, starts its backend and this tree's
(each as shipped: metrics on, no span exporter, its own fresh store), and
loads both with the round loop of `make bench` (shuffled rounds, `wrk -t1`).
With --chain, each tree's frontend in front of its backend is loaded instead
(CPU per request: both processes). Prints each round and the medians; a ratio
is the median of per-round ratios.

    .venv/bin/python bench/compare.py REV [-r 6] [-d 4] [--path /api/tasks] [--chain]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/compare.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import LoadResult, run_rounds  # noqa: E402
from bench.processes import REPO, VENV_BIN, Service, start_service  # noqa: E402


@dataclass
class Side:
    key: str
    url: str
    servers: list[Service]
    runs: list[LoadResult] = field(default_factory=list)


def backend_argv() -> list[str]:
    """`python -P -m backend`: -P keeps the working directory off sys.path, so PYTHONPATH
    alone says which tree's code runs."""
    return [str(VENV_BIN / "python"), "-P", "-m", "backend"]


def start_backend(name: str, tree: Path, work: Path) -> Service:
    env = {
        "LOG_LEVEL": "warning",
        "OTEL_TRACES_EXPORTER": "none",
        "APP_VERSION": "v1",
        "INSTANCE_NAME": "compare",
        "TASKS_DB": str(work / f"{name}.db"),
        "PYTHONPATH": str(tree),
    }
    return start_service(name, backend_argv(), env=env, log_dir=work / "logs")


def start_frontend(name: str, tree: Path, work: Path, backend: Service) -> Service:
    """TREE's frontend (run from PYTHONPATH, as its backend) in front of BACKEND."""
    env = {
        "LOG_LEVEL": "warning",
        "OTEL_TRACES_EXPORTER": "none",
        "INSTANCE_NAME": "compare-frontend",
        "BACKEND_URL": backend.url,
        "PYTHONPATH": str(tree),
    }
    argv = [*backend_argv()[:-1], "frontend"]
    return start_service(name, argv, env=env, log_dir=work / "logs")


def table(sides: list[Side]) -> list[str]:
    med = statistics.median
    lines = ["| tree | req/s | CPU us/req | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for s in sides:
        lines.append(
            f"| {s.key} | {med(r.rps for r in s.runs):,.0f} "
            f"| {med(r.cpu_us_per_req for r in s.runs):,.0f} "
            f"| {med(r.p50_ms for r in s.runs):.2f} | {med(r.p99_ms for r in s.runs):.2f} |"
        )
    before, after = sides
    pairs = list(zip(after.runs, before.runs, strict=True))
    rps = med(a.rps / b.rps for a, b in pairs)
    cpu = med(a.cpu_us_per_req / b.cpu_us_per_req for a, b in pairs)
    lines.append(f"after/before, median of per-round ratios: req/s {rps:.2f}, CPU/req {cpu:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/compare.py", description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="git revision of the 'before' backend")
    parser.add_argument("-r", "--rounds", type=int, default=6)
    parser.add_argument("-d", "--duration", type=float, default=4.0)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("--path", default="/api/tasks")
    parser.add_argument("--chain", action="store_true", help="load frontend -> backend")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="taskmesh-compare-"))
    tree = work / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(tree), args.rev], cwd=REPO, check=True
    )
    started: list[Service] = []
    try:
        sides = []
        for name, where in (("before", tree), ("after", REPO)):
            started.append(start_backend(name, where, work))
            servers = [started[-1]]
            if args.chain:
                started.append(start_frontend(f"{name}-frontend", where, work, servers[0]))
                servers.insert(0, started[-1])
            sides.append(Side(name, servers[0].url + args.path, servers))
        run_rounds(
            sides,
            rounds=args.rounds,
            connections=args.connections,
            duration_s=args.duration,
            warmup_s=2.0,
        )
        for s in sides:
            rounds = ", ".join(f"{r.rps:,.0f} req/s {r.cpu_us_per_req:.0f} us" for r in s.runs)
            print(f"{s.key}: {rounds}")
        print("\n".join(table(sides)))
    finally:
        for s in started:
            s.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
