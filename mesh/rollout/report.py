"""What a rollout prints: a table that grows per step, a progress line while an interval
runs (on a terminal), and the JSON of `--json` (keys only ever added).

It also records events in the mesh (`mesh events`, the page's chart and rollout panel),
object `rollout/SERVICE`, each with a one-line message and the same facts as `data`
(keys only ever added):

    every event       {service, canary, stable, steps: [10, 50, 100]}
    RolloutStarted    + {weights (before), interval_s, thresholds: {max_error_rate,
                         max_p99_ms, min_requests}}
    StepPassed,       + {step: {step, weight, canary: {requests, error_rate, p99_ms},
    StepFailed           stable: {...}, verdict, reason, served}, weights}
    Promoted,         + {result: promoted | rolled_back, reason, weights (at the end)}
    RolledBack

    StepPassed's message:  step 2/3 (50% to v2) passed; v2 120 requests, 0.0% 5xx,
                           p99 12ms; v1 118 requests, 0.8% 5xx, p99 9ms
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from mesh.rollout.judge import SubsetMetrics

if TYPE_CHECKING:
    from mesh.rollout.plan import Plan


@dataclass
class Step:
    number: int
    weight: int
    canary: SubsetMetrics
    stable: SubsetMetrics
    reason: str | None  # why the step failed; None: passed
    served: dict[str, int] = field(default_factory=dict)  # Envoy's weights during the step

    @property
    def verdict(self) -> str:
        return "pass" if self.reason is None else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "weight": self.weight,
            "canary": self.canary.to_dict(),
            "stable": self.stable.to_dict(),
            "verdict": self.verdict,
            "reason": self.reason,
            "served": self.served,
        }


@dataclass
class Outcome:
    result: str  # promoted | rolled_back
    reason: str
    steps: list[Step]
    interrupted: bool = False
    weights: dict[str, int] = field(default_factory=dict)  # what Envoy serves at the end

    def to_dict(self, service: str, canary: str, stable: str) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "service": service,
            "canary": canary,
            "stable": stable,
            "interrupted": self.interrupted,
            "weights": self.weights,
            "steps": [s.to_dict() for s in self.steps],
        }


def _p99(m: SubsetMetrics) -> str:
    return "-" if m.p99_ms is None else f"{m.p99_ms:.0f}ms"


def _cells(m: SubsetMetrics) -> str:
    rate = f"{m.error_rate:.1f}%" if m.requests else "-"
    return f"{m.requests:>7} {rate:>7} {_p99(m):>8}"


class Console:
    """The table on OUT (or line by line to SAY); the progress line only when OUT is a
    terminal; nothing at all when QUIET (--json prints the outcome instead)."""

    def __init__(
        self,
        out: TextIO = sys.stdout,
        quiet: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.out = out
        self.quiet = quiet
        self.say = say
        tty = bool(getattr(out, "isatty", lambda: False)())
        self.tty = tty and not quiet and say is None
        self._progress = False

    def line(self, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        if self.say is not None:
            self.say(text)
        else:
            print(text, file=self.out, flush=True)

    def header(self, canary: str, stable: str) -> None:
        c, s = canary[:6], stable[:6]
        self.line(
            f"{'STEP':<5}{'WEIGHT':>6}  {c + ' req':>7} {c + ' err':>7} {c + ' p99':>8}  "
            f"{s + ' req':>7} {s + ' err':>7} {s + ' p99':>8}  VERDICT"
        )

    def row(self, step: Step) -> None:
        verdict = step.verdict if step.reason is None else f"fail: {step.reason}"
        self.line(
            f"{step.number:<5}{step.weight:>5}%  {_cells(step.canary)}  {_cells(step.stable)}  "
            f"{verdict}"
        )

    def progress(self, text: str) -> None:
        if self.tty:
            self.out.write(f"\r{text}\x1b[K")
            self.out.flush()
            self._progress = True

    def _clear(self) -> None:
        if self._progress:
            self.out.write("\r\x1b[K")
            self._progress = False


# -- events: the message and the data of each


def _about(plan: Plan) -> dict[str, Any]:
    return {
        "service": plan.service,
        "canary": plan.canary,
        "stable": plan.stable,
        "steps": list(plan.steps),
    }


def started_data(plan: Plan) -> dict[str, Any]:
    t = plan.thresholds
    thresholds = {
        "max_error_rate": t.max_error_rate,
        "max_p99_ms": t.max_p99_ms,
        "min_requests": t.min_requests,
    }
    more = {"weights": dict(plan.before), "interval_s": plan.interval_s, "thresholds": thresholds}
    return {**_about(plan), **more}


def step_data(plan: Plan, step: Step) -> dict[str, Any]:
    return {**_about(plan), "step": step.to_dict(), "weights": plan.weights_at(step.weight)}


def end_data(plan: Plan, result: str, reason: str, weights: dict[str, int]) -> dict[str, Any]:
    return {**_about(plan), "result": result, "reason": reason, "weights": dict(weights)}


def _said(subset: str, m: SubsetMetrics) -> str:
    return f"{subset} {m.requests} requests, {m.error_rate:.1f}% 5xx, p99 {_p99(m)}"


def step_message(plan: Plan, step: Step) -> str:
    """One line: the step, its verdict, then the canary's and the stable subset's numbers."""
    verdict = "passed" if step.reason is None else f"failed: {step.reason}"
    return (
        f"step {step.number}/{len(plan.steps)} ({step.weight}% to {plan.canary}) {verdict}; "
        f"{_said(plan.canary, step.canary)}; {_said(plan.stable, step.stable)}"
    )
