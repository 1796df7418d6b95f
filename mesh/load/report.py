"""Rendering a load Result: percentiles, a fortio-style text report, and JSON.

JSON report keys (stable; add new keys, never rename):

- ``url``, ``method``, ``connections``, ``qps_target`` (0 = no limit),
  ``requests_target`` (-n or null), ``duration_target_s`` (-t or null)
- ``requests``: requests that finished (responses + errors); ``responses``
- ``duration_s``, ``rate_rps`` (achieved), ``interrupted`` (Ctrl-C)
- ``status_codes``: ``{"200": {"count": n, "percent": p}, ...}`` (percent of ``requests``)
- ``overloaded_503``: 503 responses carrying ``x-envoy-overloaded: true``
- ``errors``: ``{"connection_refused": {"count", "percent"}, ...}``; ``error_count``
- ``versions``, ``instances``: ``{"v1": {"count", "percent"}, ...}`` by
  ``x-backend-version`` / ``x-backend-instance`` (or the JSON body's ``backend``);
  percent of the responses that named one (so a split reads v1 90 / v2 10 even
  when some answers were Envoy's own 503s)
- ``latency_ms``: ``{"min", "mean", "p50", "p90", "p99", "max"}`` over responses, null if none
- ``sockets_used``: TCP connections opened
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mesh.load.runner import Result

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks.

    The same definition as numpy's default and ``statistics.quantiles(method="inclusive")``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    data = sorted(values)
    summary = {"min": data[0], "mean": sum(data) / len(data)}
    summary.update({f"p{q}": percentile(data, q) for q in PERCENTILES})
    summary["max"] = data[-1]
    return {k: round(v, 3) for k, v in summary.items()}


def _share(counts: Mapping[Any, int], total: int) -> dict[str, dict[str, float]]:
    return {
        str(k): {"count": n, "percent": round(100.0 * n / total, 2) if total else 0.0}
        for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))
    }


def to_dict(result: Result) -> dict[str, Any]:
    """The report as plain data: the keys documented in this module's docstring."""
    o = result.options
    total, responses = result.total, result.responses
    return {
        "url": o.url,
        "method": o.method,
        "connections": o.connections,
        "qps_target": o.qps,
        "requests_target": o.requests,
        "duration_target_s": o.duration_s,
        "requests": total,
        "responses": responses,
        "duration_s": round(result.duration_s, 3),
        "rate_rps": round(result.rate, 2),
        "interrupted": result.interrupted,
        "status_codes": _share(result.status_counts, total),
        "overloaded_503": result.overloaded_503,
        "errors": _share(result.errors, total),
        "error_count": sum(result.errors.values()),
        "versions": _share(result.versions, sum(result.versions.values())),
        "instances": _share(result.instances, sum(result.instances.values())),
        "latency_ms": latency_summary(result.latencies_ms),
        "sockets_used": result.sockets_used,
    }


def render_json(result: Result) -> str:
    return json.dumps(to_dict(result), indent=2)


def _split_lines(title: str, shares: Mapping[str, Mapping[str, float]]) -> list[str]:
    if not shares:
        return [f"{title}: none seen"]
    width = max(len(k) for k in shares)
    lines = [f"{title}:"]
    for name, s in shares.items():
        lines.append(f"  {name:<{width}} : {s['count']:>7} ({s['percent']:5.1f} %)")
    return lines


def render_text(result: Result) -> str:
    """A report a person reads at a glance, in the spirit of fortio's."""
    d = to_dict(result)
    target = (
        f"{d['requests_target']} requests"
        if d["requests_target"] is not None
        else f"{d['duration_target_s']:g}s"
    )
    qps = f"{d['qps_target']:g} qps" if d["qps_target"] else "max qps"
    lines = [
        f"{d['method']} {d['url']}  -c {d['connections']}, {target}, {qps}",
        f"Ran {d['requests']} requests in {d['duration_s']:.3f} s: {d['rate_rps']:.1f} req/s, "
        f"{d['sockets_used']} sockets used" + ("  (interrupted)" if d["interrupted"] else ""),
        "",
    ]
    for code, s in d["status_codes"].items():
        extra = ""
        if code == "503":
            extra = f"   {d['overloaded_503']} with x-envoy-overloaded (circuit breaker)"
        lines.append(f"Code {code} : {s['count']:>7} ({s['percent']:5.1f} %){extra}")
    for kind, s in d["errors"].items():
        lines.append(f"Error {kind} : {s['count']} ({s['percent']:.1f} %)")
    if not d["status_codes"] and not d["errors"]:
        lines.append("No requests finished.")
    lines.append("")
    lines += _split_lines("Backend versions", d["versions"])
    lines += _split_lines("Backend instances", d["instances"])
    lat = d["latency_ms"]
    lines.append("")
    if lat:
        lines.append(
            "Latency ms: "
            + "  ".join(f"{k} {lat[k]:.2f}" for k in ("p50", "p90", "p99", "max"))
            + f"  (mean {lat['mean']:.2f}, min {lat['min']:.2f})"
        )
    else:
        lines.append("Latency ms: no responses")
    return "\n".join(lines)
