"""The verdict of one step: the canary's error rate, p99 and traffic against thresholds.

As Flagger's analysis: a metric over its threshold fails the check, and so does a query
with too little data ("not enough traffic": fewer canary requests than the minimum, or
no latency samples). Flagger counts failed checks up to `threshold`; a local rollout
stops at the first failed step (threshold 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float = 1.0  # percent of the canary's requests answered 5xx
    max_p99_ms: float = 500.0
    min_requests: int = 20


@dataclass(frozen=True)
class SubsetMetrics:
    """One subset's outcomes during one interval (deltas, not totals)."""

    requests: int
    errors: int
    p99_ms: float | None  # None: no latency sample in the interval

    @property
    def error_rate(self) -> float:
        """Percent of requests answered 5xx (0 without requests)."""
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, float | int | None]:
        p99 = None if self.p99_ms is None else round(self.p99_ms, 1)
        return {"requests": self.requests, "error_rate": round(self.error_rate, 2), "p99_ms": p99}


def _number(value: float) -> str:
    return f"{value:g}"


def judge(subset: str, canary: SubsetMetrics, limits: Thresholds) -> str | None:
    """Why the canary SUBSET fails the step (one line), or None when it passes."""
    if canary.requests < limits.min_requests:
        return (
            f"not enough traffic: {subset} got {canary.requests} requests < {limits.min_requests}"
        )
    if canary.error_rate > limits.max_error_rate:
        return f"{subset} error rate {canary.error_rate:.1f}% > {_number(limits.max_error_rate)}%"
    if canary.p99_ms is None:
        return f"{subset} p99 unknown: no latency sample from Envoy in the interval"
    if canary.p99_ms > limits.max_p99_ms:
        return f"{subset} p99 {canary.p99_ms:.0f}ms > {_number(limits.max_p99_ms)}ms"
    return None
