"""A rollout's input, checked before anything changes: steps, interval, subsets, and the
lock that keeps a second rollout off a mesh while one runs."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mesh.cli import CliError
from mesh.rollout.judge import Thresholds
from mesh.rollout.target import Target
from mesh.state import pid_alive

LOCK_FILE = "rollout.lock"
MAX_INTERVAL_S = 3600.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def parse_steps(text: str) -> list[int]:
    """`10,25,50,100` -> [10, 25, 50, 100]: whole percents, increasing, ending in 100."""
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise CliError(f"--steps {text!r}: expected whole percents like 10,25,50,100") from None
    if any(not 1 <= s <= 100 for s in steps):
        raise CliError(f"--steps {text!r}: every step is a percent from 1 to 100")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise CliError(f"--steps {text!r}: steps must increase")
    if steps[-1] != 100:
        raise CliError(f"--steps {text!r}: the last step must be 100 (the promotion)")
    return steps


def parse_duration(text: str) -> float:
    """`30s`, `1m`, `500ms` or plain seconds -> seconds (more than 0, at most an hour)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CliError(f"--interval {text!r}: expected a duration like 30s, 1m or 500ms")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    if not 0 < value <= MAX_INTERVAL_S:
        raise CliError(f"--interval {text!r}: must be more than 0 and at most 1h")
    return value


@dataclass(frozen=True)
class Plan:
    service: str
    canary: str
    stable: str
    steps: list[int]
    interval_s: float
    thresholds: Thresholds
    before: dict[str, int]  # the default route's weights in force before the rollout
    # what a rollback applies: None (the files' weights, when they were in force) or BEFORE
    restore: dict[str, int] | None = None
    others: list[str] = field(default_factory=list)

    def weights_at(self, percent: int) -> dict[str, int]:
        """The default route's weights at step PERCENT: the canary gets it, the stable
        subset the rest, any other subset of the route 0 (listed, so a rollback is one
        edit)."""
        weights = {s: 0 for s in self.before}
        weights[self.stable] = 100 - percent
        weights[self.canary] = percent
        return weights


def resolve(
    service: str,
    canary: str,
    stable: str | None,
    subsets: list[str],
    before: dict[str, int],
    noun: str = "subset",
) -> str:
    """The stable subset (--from, else the subset the default route sends most to), with
    CANARY and it checked against SUBSETS (the ones Envoy has a cluster for). NOUN: what
    the names are (`subset`, or `backendRef` for the Services of an HTTPRoute)."""
    have = ", ".join(subsets) or "none"
    if canary not in subsets:
        raise CliError(f"--to {canary}: {service} has no {noun} {canary!r} (have: {have})")
    if stable is None:
        rest = {s: w for s, w in before.items() if s != canary and w > 0}
        if not rest:
            raise CliError(f"{service}: {canary} already receives 100% of the default route")
        stable = max(rest, key=lambda s: (rest[s], s))
    if stable not in subsets:
        raise CliError(f"--from {stable}: {service} has no {noun} {stable!r} (have: {have})")
    if stable == canary:
        raise CliError(f"--from {stable}: the stable {noun} must differ from --to")
    return stable


def make_plan(
    target: Target,
    service: str,
    canary: str,
    stable: str | None,
    steps: str,
    interval: str,
    thresholds: Thresholds,
) -> Plan:
    """The checked Plan against the running TARGET (CliError, nothing changed, when
    something is wrong). The subsets are the ones Envoy has a cluster for; when an
    HTTPRoute routes SERVICE, the Services its backendRefs name that Envoy has one for."""
    import httpx

    from mesh.rollout.served import subsets
    from mesh.rollout.target import file_route_names

    percents = parse_steps(steps)
    seconds = parse_duration(interval)
    before = target.weights(service)  # CliError for a Service without a default route
    names = file_route_names(target.directory, service)
    with httpx.Client(timeout=10.0) as client:
        have = subsets(target.admin_url, service, client, names)
    noun = "subset" if names is None else "backendRef"
    stable = resolve(service, canary, stable, have, before, noun)
    files = target.file_weights(service)
    return Plan(
        service=service,
        canary=canary,
        stable=stable,
        steps=percents,
        interval_s=seconds,
        thresholds=thresholds,
        before=before,
        restore=None if files == before else before,
    )


class RolloutLock:
    """`<state-dir>/rollout.lock` holds the pid of the rollout that runs (one per mesh);
    a lock left by a process that has exited is taken over."""

    def __init__(self, state_dir: Path, service: str) -> None:
        self.path = state_dir / LOCK_FILE
        self.service = service
        self.held = False

    def __enter__(self) -> RolloutLock:
        body = json.dumps({"pid": os.getpid(), "service": self.service}) + "\n"
        for _ in range(2):  # a stale lock is removed once, then created again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and pid_alive(holder[0]):
                    raise CliError(
                        f"a rollout of {holder[1]} is already running (pid {holder[0]}, "
                        f"{self.path}); wait for it or stop it with Ctrl-C"
                    ) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as out:
                out.write(body)
            self.held = True
            return self
        raise CliError(f"{self.path}: could not take the rollout lock")

    def _holder(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.path.read_text())
            return int(data["pid"]), str(data.get("service", "?"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        holder = self._holder()
        if self.held and holder is not None and holder[0] == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False
