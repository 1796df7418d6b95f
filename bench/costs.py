"""Where the CPU goes (issue 16): per-process cost targets of `make bench`, PASS or MISS.

Every value is the median of per-round values, so each compares runs that
shared the machine's state; a target is a maximum. The rows read the runs of
bench/run.py's configurations by key and each process's CPU by its name.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.load import LoadResult

Runs = Mapping[str, Sequence[LoadResult]]


def cpu(run: LoadResult, process: str | None = None) -> float:
    """CPU us/req of one process of a run, or of all of them."""
    return run.cpu_us_per_req if process is None else run.cpu_us_by_process.get(process, 0.0)


def _per_round(
    runs: Runs, a: str, b: str, pick: Callable[[LoadResult, LoadResult], float]
) -> float:
    pairs = zip(runs[a], runs[b], strict=True)
    values = [pick(x, y) for x, y in pairs]
    return statistics.median(values) if values else float("nan")


def _div(a: float, b: float) -> float:
    return a / b if b else float("inf")


@dataclass(frozen=True)
class CostTarget:
    label: str
    value: Callable[[Runs], float]
    maximum: float | None  # None: shown, no target
    unit: str  # "x" (a ratio) or "us"


#: Issue 16's "<= 100 us of Envoy CPU per hop" was set on the machine of
#: reference/perf-baseline.md, where Envoy answering by itself (`direct_response`) cost
#: 14 us a request. The same machine kind has since run Envoy's floor at 55-60 us (a
#: slower host: bare FastAPI moved far less), so the target is held as that multiple of
#: the floor measured in the same round: 100 / 14.
HOP_FLOOR_TIMES = 100.0 / 14.0


def envoy_per_hop(key: str, hops: int) -> Callable[[Runs], float]:
    return lambda runs: statistics.median(cpu(r, "envoy") / hops for r in runs[key])


def envoy_per_hop_vs_floor(key: str, hops: int) -> Callable[[Runs], float]:
    """Envoy's CPU per hop over its floor's (`envoy-floor`), per round, median."""
    return lambda runs: _per_round(
        runs, key, "envoy-floor", lambda x, f: _div(cpu(x, "envoy") / hops, cpu(f))
    )


def p99_over_p50(key: str) -> Callable[[Runs], float]:
    return lambda runs: statistics.median(_div(r.p99_ms, r.p50_ms) for r in runs[key])


COST_TARGETS = [
    CostTarget(
        "backend (default) CPU/req vs bare FastAPI endpoint",
        lambda runs: _per_round(runs, "metrics", "fastapi", lambda x, y: _div(cpu(x), cpu(y))),
        1.3,
        "x",
    ),
    CostTarget(
        "frontend's own CPU/req vs backend's, in the direct chain",
        lambda runs: _per_round(
            runs, "chain", "chain", lambda x, _: _div(cpu(x, "frontend"), cpu(x, "backend"))
        ),
        2.0,
        "x",
    ),
    CostTarget("Envoy CPU/req per hop, frontend -> Envoy -> backend",
               envoy_per_hop("envoy-chain", 1), None, "us"),
    CostTarget("Envoy CPU/req per hop, gateway -> frontend -> Envoy -> backend (2 hops)",
               envoy_per_hop("gateway-chain", 2), None, "us"),
    CostTarget("Envoy floor: CPU/req answering by itself (direct_response)",
               lambda runs: statistics.median(cpu(r) for r in runs["envoy-floor"]), None, "us"),
    CostTarget("Envoy CPU/req per hop vs its floor, frontend -> Envoy -> backend",
               envoy_per_hop_vs_floor("envoy-chain", 1), HOP_FLOOR_TIMES, "x"),
    CostTarget("Envoy CPU/req per hop vs its floor, gateway -> ... (2 hops)",
               envoy_per_hop_vs_floor("gateway-chain", 2), HOP_FLOOR_TIMES, "x"),
    CostTarget("p99 / p50, backend (default)", p99_over_p50("metrics"), 3.0, "x"),
    CostTarget("p99 / p50, frontend -> backend", p99_over_p50("chain"), 3.0, "x"),
]  # fmt: skip


def by_process(run: LoadResult) -> str:
    """`frontend 310 + backend 160`: each process's CPU us/req in one run."""
    parts = [f"{name} {us:,.0f}" for name, us in run.cpu_us_by_process.items()]
    return " + ".join(parts) or "-"


def report(runs: Runs, connections: int) -> list[str]:
    """Print the cost rows; return the missed ones."""
    missed: list[str] = []
    print(f"\n| CPU and tail, -c {connections} (median of rounds) | value | target | result |")
    print("|---|---:|---|---|")
    for t in COST_TARGETS:
        value = t.value(runs)
        shown = f"{value:,.0f} us" if t.unit == "us" else f"{value:.2f}x"
        if t.maximum is None:
            print(f"| {t.label} | {shown} | - | - |")
            continue
        limit = f"<= {t.maximum:.3g} us" if t.unit == "us" else f"<= {t.maximum:.3g}x"
        ok = value <= t.maximum
        if not ok:
            missed.append(f"{t.label} {shown} > {limit.removeprefix('<= ')}")
        print(f"| {t.label} | {shown} | {limit} | {'PASS' if ok else 'MISS'} |")
    return missed
