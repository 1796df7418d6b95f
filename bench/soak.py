"""`make soak`: a bounded soak of the local mesh - steady load, a fault flipping on and off.

One LocalMesh of k8s/ on free loopback ports. Steady load (`mesh load`, fixed QPS) goes
through the gateway to /api/tasks (stable route: backend v1) in phases of --flip-every
seconds; every other phase turns a 503 fault on in one replica (backend-v1-0), the
others have it off. Meanwhile the resident memory of every process (each workload,
Envoy, and this load generator) is sampled.

Pass conditions (exit 1 on any miss, after printing the table):
  - memory: after the warm-up, no process grows by more than --max-growth-mb (median of
    the last samples minus median of the first ones);
  - errors match faults: a phase with the fault off has no failed request and no
    injected error; a phase with it on has exactly as many failed requests as the
    replica injected (the route does not retry 5xx: each one reaches the client; while
    outlier detection keeps the replica ejected it injects none); over the run, at
    least one fault was injected.

    python bench/soak.py [--minutes 3] [--flip-every 10] [--qps 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from mesh.load.runner import run_load  # noqa: E402
from mesh.manifests import load  # noqa: E402
from mesh.processes import free_port  # noqa: E402
from mesh.runner import LocalMesh  # noqa: E402

FAULTED = "backend-v1-0"
FAULT = {"status": 503, "error_rate": 1.0}
SAMPLE_EVERY_S = 2.0
EDGE_SAMPLES = 3  # samples averaged (median) at each end of the measured window
MAX_MINUTES = 60.0
MB = 1024 * 1024


@dataclass
class Phase:
    index: int
    fault_on: bool
    requests: int = 0
    failed: int = 0
    injected: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        # fault on: every failure is an injected one. It may inject nothing at all while
        # outlier detection keeps the replica ejected (its ejection time grows each time).
        if self.fault_on:
            return self.failed == self.injected
        return self.failed == 0 and self.injected == 0


@dataclass
class Memory:
    name: str
    pid: int
    group: bool = True  # add the process's children (a workload's process group)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (t, rss bytes)

    def growth(self, warmup_s: float) -> tuple[int, int, int] | None:
        """(first, last, growth) in bytes over the samples after WARMUP_S, or None."""
        kept = [rss for t, rss in self.samples if t >= warmup_s]
        if len(kept) < 2 * EDGE_SAMPLES:
            return None
        first = int(statistics.median(kept[:EDGE_SAMPLES]))
        last = int(statistics.median(kept[-EDGE_SAMPLES:]))
        return first, last, last - first


def positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not 0 < value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most {MAX_MINUTES:g}")
    return value


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=positive_minutes, default=3.0, help="length (default 3)")
    p.add_argument(
        "--flip-every",
        type=positive_number,
        default=10.0,
        metavar="SECONDS",
        help="seconds per phase; the fault is on every other one (default 10)",
    )
    p.add_argument("--qps", type=positive_number, default=50.0, help="load rate (default 50)")
    p.add_argument("--connections", type=int, default=4, help="load connections (default 4)")
    p.add_argument(
        "--max-growth-mb",
        type=positive_number,
        default=20.0,
        metavar="MB",
        help="RSS growth allowed per process after the warm-up (default 20)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help="memory not measured (default: a quarter of the run, at most 30)",
    )
    args = p.parse_args(argv)
    if args.minutes * 60 < 2 * args.flip_every:
        p.error("--minutes must allow two phases of --flip-every (one off, one on)")
    if args.warmup is None:
        args.warmup = min(30.0, args.minutes * 60 / 4)
    return args


def sample_memory(memories: list[Memory], started: float, stop: threading.Event) -> None:
    """Every SAMPLE_EVERY_S: each process's RSS plus its children's (a process group)."""
    while not stop.is_set():
        now = time.monotonic() - started
        for m in memories:
            try:
                proc = psutil.Process(m.pid)
                rss = proc.memory_info().rss
                if m.group:
                    rss += sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                continue  # a process that is gone shows as missing samples
            m.samples.append((now, rss))
        stop.wait(SAMPLE_EVERY_S)


def injected_errors(client: httpx.Client, url: str) -> int:
    return int(client.get(f"{url}/admin/fault").json()["injected"]["errors"])


def run_phases(mesh: LocalMesh, args: argparse.Namespace) -> list[Phase]:
    target = f"{mesh.gateway_url}/api/tasks"
    replica = mesh.instance_url(FAULTED)
    count = int(args.minutes * 60 // args.flip_every)
    phases = []
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            phase = Phase(i, fault_on=i % 2 == 1)
            if phase.fault_on:
                client.put(f"{replica}/admin/fault", json=FAULT).raise_for_status()
            else:
                client.delete(f"{replica}/admin/fault").raise_for_status()
            before = injected_errors(client, replica)
            result = run_load(
                target, connections=args.connections, duration=args.flip_every, qps=args.qps
            )
            phase.injected = injected_errors(client, replica) - before
            phase.statuses = result.status_counts
            phase.requests = result.total
            phase.failed = result.total - result.status_counts.get(200, 0)
            phases.append(phase)
            state = "on " if phase.fault_on else "off"
            print(f"phase {i + 1}/{count} fault {state}: {phase.requests} requests, "
                  f"{phase.failed} failed, {phase.injected} injected", flush=True)  # fmt: skip
        client.delete(f"{replica}/admin/fault")
    return phases


def report(phases: list[Phase], memories: list[Memory], args: argparse.Namespace) -> bool:
    injected = sum(p.injected for p in phases)
    ok = injected > 0  # the fault was exercised at all
    print(f"\n{'PHASE':<7}{'FAULT':<7}{'REQUESTS':>9}{'FAILED':>8}{'INJECTED':>10}  RESULT")
    for p in phases:
        ok &= p.ok
        print(f"{p.index + 1:<7}{'on' if p.fault_on else 'off':<7}{p.requests:>9}{p.failed:>8}"
              f"{p.injected:>10}  {'PASS' if p.ok else 'MISS'}")  # fmt: skip
    failed = sum(p.failed for p in phases)
    print(f"total: {failed} failed, {injected} injected ({'PASS' if ok else 'MISS: no fault hit'})")
    limit = args.max_growth_mb
    print(f"\nmemory after a {args.warmup:.0f}s warm-up (RSS, MB; growth < {limit:g} MB)")
    print(f"{'PROCESS':<16}{'PID':>8}{'FIRST':>9}{'LAST':>9}{'MAX':>9}{'GROWTH':>9}  RESULT")
    for m in memories:
        grown = m.growth(args.warmup)
        if grown is None:
            ok = False
            print(f"{m.name:<16}{m.pid:>8}  too few samples (the process exited?)  MISS")
            continue
        first, last, growth = grown
        peak = max(rss for _, rss in m.samples)
        passed = growth < limit * MB
        ok &= passed
        print(f"{m.name:<16}{m.pid:>8}{first / MB:>9.1f}{last / MB:>9.1f}{peak / MB:>9.1f}"
              f"{growth / MB:>+9.1f}  {'PASS' if passed else 'MISS'}")  # fmt: skip
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"soak: {args.minutes:g} min of {args.qps:g} req/s through the gateway, "
          f"fault on {FAULTED} every other {args.flip_every:g}s phase", flush=True)  # fmt: skip
    k8s = ROOT / "k8s"
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        services = {s.name: free_port() for s in load(k8s).services}
        mesh = LocalMesh(
            k8s,
            gateway_port=free_port(),
            admin_port=free_port(),
            service_ports=services,
            state_dir=Path(tmp) / "state",
        )
        with mesh:
            memories = [Memory(c.name, c.popen.pid) for c in mesh.children]
            memories.append(Memory("soak (load)", psutil.Process().pid, group=False))
            stop = threading.Event()
            sampler = threading.Thread(
                target=sample_memory, args=(memories, time.monotonic(), stop), daemon=True
            )
            sampler.start()
            try:
                phases = run_phases(mesh, args)
            finally:
                stop.set()
                sampler.join(SAMPLE_EVERY_S * 2)
            dead = [c.name for c in mesh.dead()]
    ok = report(phases, memories, args)
    if dead:
        ok = False
        print(f"\nexited during the soak: {', '.join(dead)}")
    print("\nsoak: PASS" if ok else "\nsoak: MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
