"""The tables of `make bench` and their targets: throughput by configuration, the ratios
held to a minimum, one Envoy hop's added latency, start-up times and resident memory.

A ratio is the median of per-round ratios (runs of one round share the machine's
state); every table returns the targets it missed, and `summary` says them once, last.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import costs
from bench.load import Config, LoadResult

READY_TARGET_S = 1.5
MESH_UP_TARGET_S = 5.0
RSS_TARGET_MB = 80.0
HOP_CONNECTIONS = 1
# Services of ours held to the readiness and memory targets (bare, httpbin and Envoy are shown).
OURS = ("backend-off", "backend", "backend-spans", "frontend", "frontend-0", "backend-v1-0")


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


@dataclass
class Hop:
    direct: list[LoadResult] = field(default_factory=list)
    via_envoy: list[LoadResult] = field(default_factory=list)

    def added_ms(self, pick: Callable[[LoadResult], float]) -> float:
        return statistics.median(
            pick(v) - pick(d) for d, v in zip(self.direct, self.via_envoy, strict=True)
        )


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
    missed += _under_limit(ready, READY_TARGET_S, "{name} ready", "{value:.2f}",
                           "{name} ready in {value:.2f} s")  # fmt: skip
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
    missed += _under_limit(rss, RSS_TARGET_MB, "{name}", "{value:.1f}",
                           "{name} RSS {value:.0f} MB")  # fmt: skip
    return missed


def _under_limit(
    values: dict[str, float], limit: float, label: str, shown: str, miss: str
) -> list[str]:
    """A row per process (LABEL, SHOWN and MISS are formats of its name and value), held
    to stay under LIMIT when it is one of OURS; return the MISS lines of those over it."""
    missed = []
    for name, value in values.items():
        row = f"| {label.format(name=name)} | {shown.format(value=value)} |"
        if name not in OURS:
            print(f"{row} - | - |")
            continue
        ok = value < limit
        if not ok:
            missed.append(miss.format(name=name, value=value))
        print(f"{row} < {limit:g} | {verdict(ok)} |")
    return missed


def summary(missed: list[str]) -> None:
    """The last line of the bench: every missed target of every table, or none."""
    print("\n" + ("targets missed: " + "; ".join(missed) if missed else "every target met"))


def _med(runs: list[LoadResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)
