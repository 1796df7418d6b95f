"""The step loop of a rollout: set the weights, wait until Envoy serves them, measure one
interval, judge; promote after the last step, roll back at the first failed one, and
restore the weights as they were when interrupted (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx

from mesh.errors import StateError
from mesh.rollout import metrics
from mesh.rollout.judge import judge
from mesh.rollout.plan import Plan
from mesh.rollout.report import (
    Console,
    Outcome,
    Step,
    end_data,
    started_data,
    step_data,
    step_message,
)
from mesh.rollout.served import served_weights, wait_served, without_zeros
from mesh.rollout.target import Target

SERVE_TIMEOUT_S = 60.0  # a generation reaches Envoy in ~0.6s; room for a loaded machine
PROGRESS_S = 0.5
LOAD_CONNECTIONS = 4
LOAD_PATH = "/api/tasks"


class StepFailed(Exception):
    """A step could not be carried out (a refused generation, Envoy not serving it)."""


class Rollout:
    def __init__(
        self, target: Target, plan: Plan, console: Console, load_qps: float | None = None
    ) -> None:
        self.target = target
        self.plan = plan
        self.console = console
        self.load_qps = load_qps
        self.client = httpx.Client(timeout=10.0)
        self.steps: list[Step] = []
        self.object = f"rollout/{plan.service}"
        #: the last reading of every Envoy read so far, gone ones included (metrics.merged)
        self.seen: metrics.Reading = {}

    # -- the whole rollout
    def run(self) -> Outcome:
        p = self.plan
        self._event(
            "Normal",
            "RolloutStarted",
            f"{p.stable} -> {p.canary} in steps {','.join(map(str, p.steps))}% every "
            f"{p.interval_s:g}s (max error rate {p.thresholds.max_error_rate:g}%, max p99 "
            f"{p.thresholds.max_p99_ms:g}ms, min requests {p.thresholds.min_requests})",
            started_data(p),
        )
        step_no, percent = 0, 0
        try:
            with self._load():
                self.console.header(p.canary, p.stable)
                # the canary's latency histogram caught up before its traffic starts
                previous = self._settled()
                for step_no, percent in enumerate(p.steps, start=1):
                    try:
                        step, previous = self._step(step_no, percent, previous)
                    except (StepFailed, StateError) as exc:  # Envoy's admin stopped answering
                        return self._roll_back(f"step {step_no} ({percent}%): {exc}")
                    self.steps.append(step)
                    self.console.row(step)
                    data = step_data(p, step)
                    if step.reason is not None:
                        self._event("Warning", "StepFailed", step_message(p, step), data)
                        return self._roll_back(f"step {step_no} ({percent}%): {step.reason}")
                    self._event("Normal", "StepPassed", step_message(p, step), data)
        except KeyboardInterrupt:
            where = f"during step {step_no} ({percent}%)" if step_no else "before step 1"
            return self._roll_back(f"interrupted {where}", interrupted=True)
        finally:
            self.client.close()
        return self._promoted()

    @contextlib.contextmanager
    def _load(self) -> Iterator[None]:
        """The rollout's own traffic through the gateway (Flagger's load tester)."""
        if not self.load_qps:
            yield
            return
        from mesh.load.background import BackgroundLoad

        url = self.target.gateway_url + LOAD_PATH
        connections = max(1, min(LOAD_CONNECTIONS, int(self.load_qps)))
        with BackgroundLoad(url, connections=connections, qps=self.load_qps):
            yield

    # -- one step
    def _step(
        self, number: int, percent: int, previous: metrics.Reading
    ) -> tuple[Step, metrics.Reading]:
        p = self.plan
        weights = p.weights_at(percent)
        self._apply(weights)
        admin = self.target.admin_url
        # counters from now on; the latency histogram from the previous step's end (it
        # lags the counters by Envoy's flush), or from before the first step
        start = {url: dict(snapshot) for url, snapshot in self._read().items()}
        for url, snapshot in previous.items():
            for subset, totals in snapshot.items():
                mine = start.setdefault(url, {}).get(subset, metrics.SubsetTotals())
                start[url][subset] = metrics.SubsetTotals(mine.counters, totals.bins)
        served = served_weights(admin, p.service, self.client)
        self._measure(number, percent, start)
        self.console.progress(
            f"step {number}/{len(p.steps)} ({percent}%): measured; waiting for Envoy's next "
            "stats flush (latency histograms, at most 5s)"
        )
        end = self._settled()
        canary = metrics.interval(start, end, p.canary)
        stable = metrics.interval(start, end, p.stable)
        reason = judge(p.canary, canary, p.thresholds)
        return Step(number, percent, canary, stable, reason, served), end

    def _apply(
        self, weights: dict[str, int] | None, wait_for: dict[str, int] | None = None
    ) -> None:
        """A new generation with WEIGHTS for the default route, then until Envoy serves
        WAIT_FOR (default WEIGHTS); StepFailed if refused or not served in time."""
        p = self.plan
        outcome = self.target.apply(p.service, weights)
        if outcome.get("result") == "refused":
            findings = outcome.get("findings") or [{}]
            first = findings[0].get("message", "refused")
            raise StepFailed(f"generation {outcome.get('generation')} refused: {first}")
        want = wait_for if wait_for is not None else weights or {}
        if not wait_served(self.target.admin_url, p.service, want, self.client, SERVE_TIMEOUT_S):
            raise StepFailed(f"Envoy did not serve {want} within {SERVE_TIMEOUT_S:.0f}s")

    def _measure(self, number: int, percent: int, start: metrics.Reading) -> None:
        """One interval. Every PROGRESS_S it reads every Envoy, so that a sidecar that
        stops during the interval (its replica replaced) keeps what it counted until
        then (metrics.merged), and on a terminal shows the live counters; an Envoy
        that does not answer for a moment is read next time."""
        p = self.plan
        began = time.monotonic()
        ends = began + p.interval_s
        total = len(p.steps)
        while (now := time.monotonic()) < ends:
            try:
                live = metrics.interval(start, self._read(), p.canary)
            except StateError:
                live = None
            if self.console.tty and live is not None:
                self.console.progress(
                    f"step {number}/{total} ({percent}%): {now - began:.0f}/{p.interval_s:g}s, "
                    f"{p.canary} {live.requests} requests, {live.errors} 5xx"
                )
            time.sleep(min(PROGRESS_S, max(0.0, ends - time.monotonic())))  # the interval

    # -- reading every Envoy: the shared one and each sidecar that runs now
    def _read(self) -> metrics.Reading:
        fresh = metrics.read(self.target.stats_urls(), self.plan.service, self.client)
        self.seen = metrics.merged(self.seen, fresh)
        return self.seen

    def _settled(self) -> metrics.Reading:
        p = self.plan
        fresh = metrics.settled(self.target.stats_urls(), p.service, p.canary, self.client)
        self.seen = metrics.merged(self.seen, fresh)
        return self.seen

    # -- the ends
    def _promoted(self) -> Outcome:
        p = self.plan
        weights_at_end = p.weights_at(100)
        weights = without_zeros(weights_at_end)
        reason = f"{p.canary} passed every step; it receives 100% of {p.service}'s default route"
        self._event("Normal", "Promoted", reason, end_data(p, "promoted", reason, weights_at_end))
        self.console.line(f"promoted: {reason}")
        return Outcome("promoted", reason, self.steps, weights=weights)

    def _roll_back(self, reason: str, interrupted: bool = False) -> Outcome:
        """Back to the weights as they were before the rollout, applied at once; further
        Ctrl-Cs wait for it (the caller ignores them)."""
        p = self.plan
        want = (
            p.before if p.restore is not None else (self.target.file_weights(p.service) or p.before)
        )
        note = ""
        try:
            self._apply(p.restore, wait_for=want)
        except StepFailed as exc:
            note = f" (the rollback failed: {exc})"
        said = f"{reason}{note}"
        self._event("Warning", "RolledBack", said, end_data(p, "rolled_back", said, want))
        served = served_weights(self.target.admin_url, p.service, self.client)
        shown = ", ".join(f"{s} {w}%" for s, w in served.items()) or "-"
        self.console.line(f"rolled back: {reason}{note}; Envoy serves {shown}")
        return Outcome("rolled_back", reason + note, self.steps, interrupted, served)

    def _event(
        self, type_: str, reason: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.target.event(type_, reason, self.object, message, data)
