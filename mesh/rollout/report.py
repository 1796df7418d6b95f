"""What a rollout prints: a table that grows per step, a progress line while an interval
runs (on a terminal), and the JSON of `--json` (keys only ever added)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from mesh.rollout.judge import SubsetMetrics


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
