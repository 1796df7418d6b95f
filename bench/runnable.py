"""Who waits for a core while a chain is loaded (issue 16): thread states, sampled.

CPU per request says what each process costs; it does not say why the gateway chain
leaves part of the machine idle while 32 requests are in flight. This starts the two
chains `make bench` compares, as it starts them (bench/run.py: the direct frontend ->
backend, and the local mesh of bench/one-backend with Envoy traced), loads each with
`wrk -t1 -cCONNECTIONS` and reads, every INTERVAL, the state of every thread of the
loaded processes and of wrk from /proc/<pid>/task/<tid>/stat. It prints per chain:

- how often k threads were runnable at once (state R: running, or waiting for a core).
  On a machine of N cores, a sample with fewer than N runnable threads left a core with
  nothing to do while the requests waited elsewhere;
- per thread, the share of samples it was runnable and the share of a core it got
  (its CPU over the same time): a thread runnable far more often than it runs waits
  for a core; one that is both, most of the time, is what the chain queues on.

The sampler is a Python loop in this process; it prints the share of a core it used
itself (it shares the cores with what it watches): read shares, not exact figures.

    .venv/bin/python bench/runnable.py [--duration 6] [-c 32] [--interval-ms 2]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/runnable.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.processes import CLK_TCK, Service, free_port, start_service, stopped_at_exit  # noqa: E402
from bench.servers import backend_command, frontend_command  # noqa: E402

ONE_BACKEND = Path(__file__).resolve().parent / "one-backend"
QUIET = {"LOG_LEVEL": "warning", "OTEL_TRACES_EXPORTER": "none"}
#: threads runnable in fewer samples than this are left out of the table (idle helpers)
MIN_SHARE = 0.01


def threads(pids: dict[str, int]) -> dict[str, Path]:
    """`process:thread` -> its /proc stat file, for every thread of PIDS (name -> pid)."""
    out = {}
    for name, pid in pids.items():
        for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
            with contextlib.suppress(OSError):
                comm = (task / "comm").read_text().strip()
                out[f"{name}:{comm}:{task.name}"] = task / "stat"
    return out


def _fields(stat: Path | int) -> list[str] | None:
    """STAT's fields after the command name; STAT may be an open descriptor of it (the
    sampler's: pread at 0 reads it anew, at a fraction of an open's cost)."""
    try:
        raw = os.pread(stat, 512, 0) if isinstance(stat, int) else stat.read_bytes()
    except OSError:
        return None  # the thread ended
    return raw.rsplit(b")", 1)[1].decode().split() if raw else None


def state(stat: Path | int) -> str | None:
    """The thread's state letter (R, S, D, ...), or None once it is gone."""
    fields = _fields(stat)
    return fields[0] if fields else None


def cpu_s(stat: Path | int) -> float:
    """User + system CPU the thread has used, in seconds (0 once it is gone)."""
    fields = _fields(stat)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


@dataclass
class Samples:
    """What the sampler saw: samples taken, how many had k threads runnable, and in how
    many each thread was runnable; CPU seconds of each thread over the sampling."""

    count: int = 0
    by_runnable: Counter[int] = field(default_factory=Counter)
    runnable: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: the CPU this process spent sampling (it shares the cores with what it watches)
    sampler_cpu: float = 0.0

    def add(self, running: list[str]) -> None:
        self.count += 1
        self.by_runnable[len(running)] += 1
        self.runnable.update(running)

    def share_below(self, cores: int) -> float:
        """Share of samples with fewer runnable threads than CORES (a core left idle)."""
        below = sum(n for k, n in self.by_runnable.items() if k < cores)
        return below / self.count if self.count else 0.0


def sample(stats: dict[str, Path], seconds: float, interval_s: float) -> Samples:
    """Read every thread's state every INTERVAL_S for SECONDS (bounded in count too)."""
    out = Samples()
    fds: dict[str, int] = {}
    try:
        for name, path in stats.items():
            with contextlib.suppress(OSError):
                fds[name] = os.open(path, os.O_RDONLY)
        before = {name: cpu_s(fd) for name, fd in fds.items()}
        own = time.thread_time()
        start = time.monotonic()
        deadline = start + seconds
        max_samples = int(seconds / interval_s) + 1
        while time.monotonic() < deadline and out.count < max_samples:
            out.add([name for name, fd in fds.items() if state(fd) == "R"])
            time.sleep(interval_s)
        out.seconds = time.monotonic() - start
        out.cpu = {name: cpu_s(fd) - before[name] for name, fd in fds.items()}
        out.sampler_cpu = time.thread_time() - own
    finally:
        for fd in fds.values():
            os.close(fd)
    return out


def report(label: str, url: str, samples: Samples, cores: int) -> None:
    print(f"\n{label} ({url}), {samples.count} samples over {samples.seconds:.1f} s")
    shares = sorted(samples.by_runnable.items())
    print(
        "threads runnable at once: " + "  ".join(f"{k}: {n / samples.count:.0%}" for k, n in shares)
    )
    idle = samples.share_below(cores)
    print(f"fewer runnable threads than cores ({cores}): {idle:.0%} of samples")
    print(f"the sampler itself used {samples.sampler_cpu / samples.seconds:.2f} cores")
    print("\n| thread | runnable | cores used |\n|---|---:|---:|")
    for name, n in samples.runnable.most_common():
        share = n / samples.count
        if share >= MIN_SHARE:
            used = samples.cpu.get(name, 0.0) / samples.seconds
            print(f"| {name.rsplit(':', 1)[0]} | {share:.0%} | {used:.2f} |")


@contextlib.contextmanager
def _chains(work: Path) -> Iterator[dict[str, tuple[str, dict[str, int]]]]:
    """The direct chain and the local mesh's gateway chain, as bench/run.py starts them:
    name -> (URL to load, the processes to watch)."""
    from bench.run import _mesh_services, _traced_mesh
    from mesh.runner import LocalMesh

    os.environ.update(QUIET)
    base = {**QUIET, "APP_VERSION": "v1", "TASKS_DB": str(work / "tasks.db")}
    services: list[Service] = []
    with stopped_at_exit(services):
        be = start_service("backend", backend_command(), env={**base, "INSTANCE_NAME": "be"},
                           log_dir=work / "logs")  # fmt: skip
        services.append(be)
        fe = start_service("frontend", frontend_command(), log_dir=work / "logs",
                           env={**base, "INSTANCE_NAME": "fe", "BACKEND_URL": be.url})  # fmt: skip
        services.append(fe)
        with _traced_mesh(LocalMesh)(
            ONE_BACKEND,
            gateway_port=free_port(),
            admin_port=free_port(),
            service_ports={"backend-service": free_port(), "frontend-service": free_port()},
            state_dir=work / "mesh",
            traces_port=free_port(),
        ) as mesh:
            in_mesh = {name: s.popen.pid for name, s in _mesh_services(mesh).items()}
            direct = {"frontend": fe.popen.pid, "backend": be.popen.pid}
            yield {
                "frontend -> backend": (fe.url + "/api/tasks", direct),
                "gateway -> frontend -> Envoy -> backend": (
                    mesh.gateway_url + "/api/tasks",
                    in_mesh,
                ),
            }


def measure(url: str, pids: dict[str, int], args: argparse.Namespace) -> Samples:
    """Load URL with wrk for the whole sampling (after WARMUP) and sample PIDS and wrk."""
    total = math.ceil(args.warmup + args.duration) + 1  # wrk takes whole seconds
    wrk = subprocess.Popen(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{total}s", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(args.warmup)  # wrk's own warm-up: it runs for a fixed time, not a condition
        stats = threads({**pids, "wrk": wrk.pid})
        return sample(stats, args.duration, args.interval_ms / 1000)
    finally:
        wrk.terminate()
        wrk.wait(timeout=30)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/runnable.py", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", type=float, default=6.0, help="seconds sampled (6)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load first (1)")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="between samples (2)")
    args = parser.parse_args(argv)
    if not 0.5 <= args.duration <= 60 or not 1 <= args.connections <= 1000:
        parser.error("--duration must be 0.5-60 s and --connections 1-1000")
    if not 0.2 <= args.interval_ms <= 1000 or not 0 <= args.warmup <= 30:
        parser.error("--interval-ms must be 0.2-1000 and --warmup 0-30 s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.prerequisites import BenchError, ensure_wrk

    try:
        ensure_wrk()
    except BenchError as exc:
        print(f"bench/runnable.py: {exc}", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    print(f"{cores} cores; wrk -t1 -c{args.connections}, {args.duration:g} s sampled per chain")
    with _chains(Path(tempfile.mkdtemp(prefix="taskmesh-runnable-"))) as chains:
        for label, (url, pids) in chains.items():
            report(label, url, measure(url, pids, args), cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
