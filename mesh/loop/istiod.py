"""The local istiod: the generation in force, the last refused one, and applying a new one.

    control = ControlPlane(...)
    control.first(directory)          # generation 1 (`mesh up`): errors raise, as before
    control.apply(directory, source)  # generation N: refused with findings, or in force
    control.status()                  # {generation, applied_at, digest, directory, refused}

An apply builds the generation (mesh/loop/generation.py), publishes the replicas into its
clusters' EDS files, pushes it to Envoy make-before-break (mesh/loop/push.py), and then
has the Deployments reconciled (mesh/loop/rollout.py). A push Envoy rejects puts the
previous generation's files back. Callers serialise applies (`lock`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesh.errors import MeshError, RunnerError
from mesh.loop.endpoints import Endpoints
from mesh.loop.events import Events
from mesh.loop.generation import Finding, Generation, PlacementFor, Refused, Secure, build
from mesh.loop.push import Pusher, PushError
from mesh.loop.sidecars import LiveSidecars, SidecarConfigs
from mesh.loop.workloads import Blueprint


def _result(number: int, result: str, **rest: Any) -> dict[str, Any]:
    return {"generation": number, "result": result, "changes": [], "findings": [],
            "problems": [], **rest}  # fmt: skip


class ControlPlane:
    """Generations of one local mesh's config (thread-safe through `lock`)."""

    def __init__(
        self,
        *,
        state_dir: Path,
        events: Events,
        endpoints: Endpoints,
        pusher: Pusher,
        placement_for: PlacementFor,
        extra_env: Callable[[], dict[str, str]],
        publish: Callable[[], None],
        reconcile: Callable[[dict[str, Blueprint]], list[str]],
        envoy_up: Callable[[], bool],
        on_change: Callable[[], None],
        check_ports: Callable[[Generation], None] = lambda generation: None,
    ) -> None:
        """PUBLISH: rewrite the EDS files from the replicas; RECONCILE: make the replicas
        match a generation's blueprints (its problems); CHECK_PORTS: raise Refused for a
        listener port the running mesh cannot take."""
        self.state_dir = state_dir
        self.events = events
        self.endpoints = endpoints
        self.pusher = pusher
        self.placement_for = placement_for
        self.extra_env = extra_env
        self.publish = publish
        self.reconcile = reconcile
        self.envoy_up = envoy_up
        self.on_change = on_change
        self.check_ports = check_ports
        self.generation: Generation | None = None
        self.refused: dict[str, Any] | None = None
        # with `mesh up --sidecars`: they follow each generation (mesh/loop/sidecars.py),
        # and SECURE makes the shared Envoy call them over mTLS
        self.sidecars: LiveSidecars | None = None
        self.secure: Secure | None = None
        # a rollout's route weights, laid over every generation: service -> {subset: %}
        self.weights: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()
        self._numbers = 0

    def _next(self) -> int:
        self._numbers += 1
        return self._numbers

    def first(self, directory: Path, secure: Secure | None = None) -> Generation:
        """Generation 1, built without `mesh check` (quick; its first problem raises as
        the error it is, as `mesh up` always did). Not pushed: the caller writes it as
        the files Envoy starts from."""
        try:
            generation = build(self._next(), directory, None, self.placement_for,
                               self.state_dir, self.extra_env(), run_checks=False,
                               secure=secure)  # fmt: skip
        except Refused as refused:
            cause = refused.__cause__
            raise cause if isinstance(cause, MeshError) else RunnerError(str(refused)) from None
        self.generation = generation
        return generation

    def in_force(self, generation: Generation) -> None:
        """GENERATION serves now (generation 1, once Envoy is ready)."""
        generation.applied_at = time.time()
        self.events.normal(
            "Applied",
            f"generation/{generation.number}",
            f"{len(generation.changes)} objects from {generation.directory} "
            f"(digest {generation.digest})",
        )

    def apply(self, directory: Path, source: str, again: bool = False) -> dict[str, Any]:
        """DIRECTORY as the next generation: {generation, result: applied | refused |
        unchanged, changes, findings, problems}. AGAIN: build and push it even if
        nothing changed. Call with `lock` held."""
        previous = self.generation
        assert previous is not None
        number = self._next()
        try:
            generation = build(number, directory, previous, self.placement_for,
                               self.state_dir, self.extra_env(), secure=self.secure,
                               weights=self.weights)  # fmt: skip
            self.check_ports(generation)
            unchanged = generation.digest == previous.digest and directory == previous.directory
            if unchanged and not again:
                self._numbers -= 1
                return _result(previous.number, "unchanged")
            sidecars = self._build_sidecars(generation)
        except Refused as refused:
            return self._refuse(number, refused.findings, source)
        held = self.sidecars.identities() if self.sidecars is not None else set()
        self.endpoints.set_clusters(self._eds(generation, sidecars), generation.deployment_of)
        self.publish()  # the replicas into the new clusters' files, before any route names them
        try:
            self.pusher.push(generation.xds, str(number), envoy_up=self.envoy_up())
            if self.sidecars is not None and sidecars is not None:
                self.sidecars.push(sidecars, str(number))
        except PushError as exc:
            restored = f"{previous.number}-restored"
            if self.sidecars is not None:
                self.sidecars.restore(restored)
            self.endpoints.set_clusters(self._eds(previous, None), previous.deployment_of)
            self.publish()
            with contextlib.suppress(PushError):
                self.pusher.push(previous.xds, restored)
            return self._refuse(number, [Finding("", "", "", "", str(exc))], source)
        generation.applied_at = time.time()
        self.generation = generation
        self.refused = None
        what = ", ".join(generation.changes) or "no object changed"
        self.events.normal("Applied", f"generation/{number}",
                             f"{what} (digest {generation.digest}, from {source})")  # fmt: skip
        self.on_change()
        problems = self.reconcile(generation.blueprints)
        self.on_change()
        now = self.sidecars.identities() if self.sidecars is not None else set()
        kept = {d.name for d in generation.manifests.deployments}
        if moved := sorted({d for d, _ in held - now if d in kept}):
            # a Deployment's replicas hold an identity no more (a new serviceAccountName
            # has rolled): push again, the callers trusting only the ones that run
            # (istiod: a full push when the service accounts of endpoints change). A
            # removed Deployment's replicas are no endpoints of the generation: untrusted.
            self.apply(directory, f"identities of {', '.join(moved)} rolled", again=True)
        return _result(number, "applied", changes=generation.changes, problems=problems)

    def refresh_eds(self) -> None:
        """Publish the EDS files again: a sidecar started or stopped with its replica."""
        if self.generation is not None:
            files = self._eds(self.generation, None)
            self.endpoints.set_clusters(files, self.generation.deployment_of)

    def _build_sidecars(self, new: Generation) -> SidecarConfigs | None:
        """NEW's config of the sidecars (None without sidecars); Refused as `build`."""
        if self.sidecars is None:
            return None
        return self.sidecars.build(new.manifests, new.number)

    def _eds(self, generation: Generation, sidecars: SidecarConfigs | None) -> dict[Path, Any]:
        """GENERATION's EDS files and its sidecars' (SIDECARS, or those in force)."""
        if self.sidecars is None:
            return generation.eds_files
        own = sidecars or self.sidecars.current
        return {**generation.eds_files, **(own.eds_files if own else {})}

    def set_weights(
        self, directory: Path, service: str, weights: dict[str, int] | None, source: str
    ) -> dict[str, Any]:
        """A rollout's step: SERVICE's default route sends WEIGHTS from now on (None: the
        weights of the files again), applied at once as a new generation. A refused one
        leaves the weights as they were. Call with `lock` held."""
        before = dict(self.weights)
        if weights is None:
            self.weights.pop(service, None)
        else:
            self.weights[service] = dict(weights)
        outcome = self.apply(directory, source)
        if outcome["result"] == "refused":
            self.weights = before
        return outcome

    def _refuse(self, number: int, findings: list[Finding], source: str) -> dict[str, Any]:
        found = [f.to_dict() for f in findings]
        self.refused = {"generation": number, "at": time.time(), "findings": found}
        first = findings[0].line() if findings else "refused"
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        serving = self.generation.number if self.generation else 0
        self.events.warning("Refused", f"generation/{number}",
                              f"{first}{more}; generation {serving} keeps serving "
                              f"(from {source})")  # fmt: skip
        self.on_change()
        return _result(number, "refused", findings=found)

    def status(self) -> dict[str, Any]:
        """The generation in force and the last refused one, for `mesh status --json`."""
        g = self.generation
        return {
            "generation": g.number if g else 0,
            "applied_at": g.applied_at if g else None,
            "digest": g.digest if g else "",
            "directory": str(g.directory) if g else "",
            "refused": self.refused,
        }
