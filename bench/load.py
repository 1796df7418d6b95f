"""Load on one URL and what it measured: wrk (a bounded aiohttp loop when wrk is missing),
its output parsed into a LoadResult, and the CPU each server spent per request.

`run_rounds` runs every configuration of a benchmark (a `Config`: its URL, the processes
it bills, its runs) in shuffled rounds after a warm-up, so that round i of every
configuration shares the machine's state and a ratio can be taken per round
(reference/perf-baseline.md).
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bench.processes import Service


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


@dataclass
class Config:
    """One configuration of a benchmark: what is loaded, the processes it bills, its runs."""

    key: str
    label: str
    url: str
    servers: list[Service]
    runs: list[LoadResult] = field(default_factory=list)

    def median_run(self) -> LoadResult:
        return sorted(self.runs, key=lambda r: r.rps)[len(self.runs) // 2]


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
