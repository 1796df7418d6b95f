"""The demo scenarios of Istio's traffic tasks, run against a running local mesh.

Each function takes the URLs of a mesh that is already up (the local runner
knows its instances' ports), runs the scenario with :mod:`mesh.load`, reads the
evidence from Envoy's admin API, and returns a report object whose ``render()``
is what a person reads. Nothing here starts or stops processes.

- :func:`canary`: requests with and without ``x-canary: true``; the version split.
- :func:`circuit_breaker`: ``-c 1``, ``-c 2``, ``-c 3`` runs (Istio's task), each followed by
  Envoy's ``upstream_rq_pending_overflow`` and ``remaining_pending``.
- :func:`outlier`: load before, during and after a v1 replica's fault; Envoy's
  ``ejections_active`` and per-host health; then the fault is cleared.
- :func:`mirror`: load on a mesh whose VirtualService mirrors v1's requests to v2; the
  answers (all v1) and the requests each subset's cluster counted (v2: the copies).

The admin reads are in :mod:`mesh.demos.envoy_stats`; the secure-gateway scenario, which
starts and changes its own mesh, in :mod:`mesh.demos.secure_gateway`.

Every URL must be loopback, as for ``mesh load``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mesh.demos.envoy_stats import (  # noqa: F401  (the demos' public names, as before)
    EJECTIONS_ACTIVE,
    PENDING_OVERFLOW,
    REMAINING_PENDING,
    UPSTREAM_RQ_TOTAL,
    EnvoyAdmin,
    loopback,
    parse_cluster_stats,
    parse_host_health,
)
from mesh.load.options import LoadOptions, build_options
from mesh.load.report import to_dict
from mesh.load.runner import Result, run_load, run_load_async

POLL_INTERVAL_S = 0.1


def success_rate(result: Result) -> float:
    """Percent of finished requests that got a 2xx."""
    ok = sum(n for code, n in result.status_counts.items() if 200 <= code < 300)
    return 100.0 * ok / result.total if result.total else 0.0


def _summary(result: Result) -> str:
    d = to_dict(result)
    codes = ", ".join(f"{c} x {s['count']}" for c, s in d["status_codes"].items())
    errors = "; " + ", ".join(f"{k} x {s['count']}" for k, s in d["errors"].items())
    versions = ", ".join(f"{v} {s['percent']:.0f}%" for v, s in d["versions"].items()) or "-"
    return (
        f"{d['requests']} requests, {success_rate(result):.1f}% 2xx "
        f"[{codes}{errors if d['errors'] else ''}], overloaded 503s {d['overloaded_503']}, "
        f"versions {versions}, sockets {d['sockets_used']}"
    )


# ---------------------------------------------------------------- canary


@dataclass
class CanaryReport:
    plain: Result
    canary: Result

    def render(self) -> str:
        return "\n".join(
            [
                'Canary routing (VirtualService backend: x-canary: "true" -> v2, else v1)',
                f"  without x-canary : {_summary(self.plain)}",
                f"  x-canary: true   : {_summary(self.canary)}",
            ]
        )


def canary(url: str, requests: int = 100, connections: int = 4) -> CanaryReport:
    """The same load without and with ``x-canary: true``; the report shows the version split.

    For the weighted variant, run the mesh from that overlay: the ``plain`` split is the weights.
    """
    url = loopback(url)
    plain = run_load(url, connections=connections, requests=requests)
    flagged = run_load(
        url, connections=connections, requests=requests, headers={"x-canary": "true"}
    )
    return CanaryReport(plain=plain, canary=flagged)


# ---------------------------------------------------------------- circuit breaker


@dataclass
class BreakerStep:
    connections: int
    result: Result
    stats: dict[str, dict[str, int]]  # cluster -> {stat: value}, read after the step
    overflow_deltas: dict[str, int]  # cluster -> upstream_rq_pending_overflow added by this step

    @property
    def overflow_delta(self) -> int:
        """upstream_rq_pending_overflow added by this step, over every cluster."""
        return sum(self.overflow_deltas.values())


@dataclass
class BreakerReport:
    steps: list[BreakerStep] = field(default_factory=list)

    def render(self) -> str:
        lines = ["Circuit breaking (Istio's task: -c 1, then -c 2, then -c 3)"]
        for s in self.steps:
            lines.append(f"  -c {s.connections}: {_summary(s.result)}")
            for cluster, values in sorted(s.stats.items()):
                overflow = values.get(PENDING_OVERFLOW, "-")
                remaining = values.get(REMAINING_PENDING, "n/a (no track_remaining)")
                lines.append(
                    f"      {cluster}: {PENDING_OVERFLOW} {overflow} "
                    f"(+{s.overflow_deltas.get(cluster, 0)} this step), "
                    f"remaining_pending {remaining}"
                )
        return "\n".join(lines)


def overflow_deltas(
    before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]
) -> dict[str, int]:
    """Each cluster's own upstream_rq_pending_overflow growth from BEFORE to AFTER.

    A cluster that appears only AFTER grew from 0; one that disappeared is left out.
    """
    return {
        cluster: values.get(PENDING_OVERFLOW, 0) - before.get(cluster, {}).get(PENDING_OVERFLOW, 0)
        for cluster, values in after.items()
    }


def circuit_breaker(
    url: str,
    admin_url: str,
    cluster_filter: str = "backend-service",
    steps: tuple[int, ...] = (1, 2, 3),
    requests_per_connection: int = 10,
) -> BreakerReport:
    """Istio's circuit-breaking task: one load step per connection count, stats after each.

    Run it against a mesh whose DestinationRule is the tight one (the circuit-breaker
    variant): 503s with ``x-envoy-overloaded`` appear from ``-c 2`` on, and Envoy's
    ``upstream_rq_pending_overflow`` grows by the number of those 503s.
    """
    url = loopback(url)
    admin = EnvoyAdmin(admin_url)
    suffixes = (PENDING_OVERFLOW, REMAINING_PENDING)
    before = admin.stats(suffixes, cluster_filter)
    report = BreakerReport()
    for c in steps:
        result = run_load(url, connections=c, requests=c * requests_per_connection)
        after = admin.stats(suffixes, cluster_filter)
        report.steps.append(BreakerStep(c, result, after, overflow_deltas(before, after)))
        before = after
    return report


# ---------------------------------------------------------------- mirroring


@dataclass
class MirrorReport:
    answers: Result
    counted: dict[str, int]  # cluster -> requests it counted during the load (copies included)

    def render(self) -> str:
        lines = [
            "Traffic mirroring (VirtualService backend: v1 answers, a copy of each request to v2)",
            f"  answers          : {_summary(self.answers)}",
        ]
        for cluster, n in sorted(self.counted.items()):
            subset = cluster.split("|")[2] or "(all)"
            lines.append(f"  {subset:<17}: {n} requests counted by Envoy's {cluster}")
        return "\n".join(lines)


def mirror(
    url: str,
    admin_url: str,
    requests: int = 100,
    connections: int = 4,
    copies_wait_s: float = 10.0,
) -> MirrorReport:
    """Istio's mirroring task: load URL, then wait (at most COPIES_WAIT_S) until the v2
    subset's cluster has counted as many requests as v1's: the copies are fire and forget,
    so the last ones may still be in flight when the load ends."""
    url = loopback(url)
    admin = EnvoyAdmin(admin_url)

    def subsets() -> dict[str, int]:
        found = admin.stats((UPSTREAM_RQ_TOTAL,), "backend-service")
        return {c: v.get(UPSTREAM_RQ_TOTAL, 0) for c, v in found.items() if "|v" in c}

    before = subsets()
    answers = run_load(url, connections=connections, requests=requests)

    def counted() -> dict[str, int]:
        return {c: n - before.get(c, 0) for c, n in subsets().items()}

    deadline = time.monotonic() + copies_wait_s
    got = counted()
    while time.monotonic() < deadline and _copies_pending(got):
        time.sleep(POLL_INTERVAL_S)
        got = counted()
    return MirrorReport(answers, got)


def _copies_pending(counted: Mapping[str, int]) -> bool:
    v1 = sum(n for c, n in counted.items() if "|v1|" in c)
    v2 = sum(n for c, n in counted.items() if "|v2|" in c)
    return v2 < v1


# ---------------------------------------------------------------- outlier detection


@dataclass
class OutlierReport:
    before: Result  # no fault
    faulted: Result  # fault on, until Envoy ejected the host (or gave up waiting)
    ejected: Result  # fault still on, host ejected: the success rate recovers
    max_ejections_active: int
    health_while_ejected: dict[str, dict[str, str]]
    ejections_after_clear: int | None  # None: not waited for

    def render(self) -> str:
        lines = [
            "Outlier detection (consecutive 5xx eject a host; the others carry the load)",
            f"  before the fault : {_summary(self.before)}",
            f"  fault on         : {_summary(self.faulted)}",
            f"  host ejected     : {_summary(self.ejected)}",
            f"  ejections_active peaked at {self.max_ejections_active}",
        ]
        for cluster, hosts in sorted(self.health_while_ejected.items()):
            for host, flags in sorted(hosts.items()):
                lines.append(f"      {cluster} {host}: {flags}")
        if self.ejections_after_clear is not None:
            lines.append(f"  fault cleared; ejections_active now {self.ejections_after_clear}")
        else:
            lines.append("  fault cleared; the host returns after baseEjectionTime")
        return "\n".join(lines)


async def _put_fault(fault_url: str, body: Mapping[str, Any] | None) -> None:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        if body is None:
            r = await client.delete(fault_url + "/admin/fault")
        else:
            r = await client.put(fault_url + "/admin/fault", json=dict(body))
        r.raise_for_status()


def _ejections(admin: EnvoyAdmin, cluster_filter: str) -> int:
    stats = admin.stats((EJECTIONS_ACTIVE,), cluster_filter)
    return sum(v.get(EJECTIONS_ACTIVE, 0) for v in stats.values())


async def _outlier(
    url: str,
    admin: EnvoyAdmin,
    fault_url: str,
    cluster_filter: str,
    connections: int,
    window: str,
    eject_wait_s: float,
    return_wait_s: float,
) -> OutlierReport:
    def window_options(duration: str | float) -> LoadOptions:
        return build_options(url, connections=connections, duration=duration)

    before = await run_load_async(window_options(window))
    await _put_fault(fault_url, {"status": 503, "error_rate": 1.0, "delay_ms": 0})
    try:
        # Load runs while the admin stats are polled: stop the load once Envoy ejects.
        stop = asyncio.Event()
        load = asyncio.create_task(run_load_async(window_options(eject_wait_s), stop=stop))
        peak = 0
        while not load.done():
            peak = max(peak, await asyncio.to_thread(_ejections, admin, cluster_filter))
            if peak:
                stop.set()
                break
            await asyncio.sleep(POLL_INTERVAL_S)  # admin poll interval
        faulted = await load  # marked interrupted when stopped at the ejection
        ejected = await run_load_async(window_options(window))
        peak = max(peak, await asyncio.to_thread(_ejections, admin, cluster_filter))
        health = await asyncio.to_thread(admin.host_health, cluster_filter)
    finally:
        await _put_fault(fault_url, None)
    after: int | None = None
    if return_wait_s > 0:
        deadline = time.monotonic() + return_wait_s
        after = await asyncio.to_thread(_ejections, admin, cluster_filter)
        while after and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL_S)  # admin poll interval
            after = await asyncio.to_thread(_ejections, admin, cluster_filter)
    return OutlierReport(before, faulted, ejected, peak, health, after)


def outlier(
    url: str,
    admin_url: str,
    fault_url: str,
    cluster_filter: str = "backend-service",
    connections: int = 4,
    window: str = "2s",
    eject_wait_s: float = 10.0,
    return_wait_s: float = 0.0,
) -> OutlierReport:
    """Fault one replica (``fault_url`` is its base URL, e.g. ``http://127.0.0.1:5001``).

    Load runs for ``window`` before the fault, then until Envoy reports an
    ejection (at most ``eject_wait_s``), then another ``window`` with the host
    ejected. The fault is always cleared. With ``return_wait_s > 0``, waits up to
    that long for ``ejections_active`` to drop back to 0 (baseEjectionTime, 15s here).
    """
    return asyncio.run(
        _outlier(
            loopback(url),
            EnvoyAdmin(admin_url),
            loopback(fault_url),
            cluster_filter,
            connections,
            window,
            eject_wait_s,
            return_wait_s,
        )
    )
