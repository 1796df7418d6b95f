"""The mesh a rollout drives: the `mesh up` of a state dir (through its control files,
mesh/control.py) or a LocalMesh in this process (`mesh demo rollout`).

Either way a step is a new config generation of the running mesh: the weights of
SERVICE's default route laid over the manifests, the files on disk unchanged
(mesh/loop/weights.py). `weights=None` goes back to what the files say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from mesh.cli import CliError
from mesh.errors import StateError

ASK_TIMEOUT_S = 120.0  # an apply validates a config with Envoy: seconds on a busy machine


class Target(Protocol):
    admin_url: str
    gateway_url: str
    state_dir: Path

    @property
    def directory(self) -> str: ...

    def stats_urls(self) -> list[str]:
        """Every Envoy whose outbound stats a rollout sums, as of now: the shared one, and
        with `mesh up --sidecars` each sidecar (a caller's requests are counted by its
        own), which come and go with their replicas."""
        ...

    def weights(self, service: str) -> dict[str, int]: ...

    def file_weights(self, service: str) -> dict[str, int] | None: ...

    def apply(self, service: str, weights: dict[str, int] | None) -> dict[str, Any]: ...

    def event(
        self, type_: str, reason: str, obj: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...


def _file_weights(directory: str | Path, service: str) -> dict[str, int] | None:
    """What the manifest files of DIRECTORY say SERVICE's default route sends (None if
    they cannot be read)."""
    from mesh.loop.weights import route_weights
    from mesh.manifests import load

    try:
        return route_weights(load(Path(directory)), service)
    except Exception:  # files edited into a broken state: restore explicit weights then
        return None


def file_route_names(directory: str | Path, service: str) -> list[str] | None:
    """The backendRef Services of the HTTPRoute the files of DIRECTORY bind to SERVICE
    (None: a VirtualService routes it, or the files cannot be read)."""
    from mesh.loop.weights import route_names
    from mesh.manifests import load

    try:
        return route_names(load(Path(directory)), service)
    except Exception:  # files edited into a broken state: the names Envoy has then
        return None


class RemoteMesh:
    """The `mesh up` process of STATE_DIR."""

    def __init__(self, state_dir: Path, timeout: float = ASK_TIMEOUT_S) -> None:
        from mesh.state import read_state

        self.state_dir = state_dir
        self.timeout = timeout
        state = read_state(state_dir)
        self.admin_url = state.admin_url
        self.gateway_url = state.gateway_urls[0] if state.gateway_urls else ""
        self.directory = str(state.config.get("directory") or state.manifests)

    def _ask(self, body: dict[str, Any]) -> dict[str, Any]:
        from mesh.control import ask

        outcome = ask(self.state_dir, body, self.timeout)
        if not outcome.get("ok"):
            raise CliError(str(outcome.get("error", "the mesh refused the request")))
        return outcome

    def stats_urls(self) -> list[str]:
        from mesh.state import read_state

        try:
            state = read_state(self.state_dir)
        except StateError:  # the mesh is stopping: its shared Envoy's admin is all there is
            return [self.admin_url]
        return list(state.stats_urls) or [state.admin_url]

    def weights(self, service: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._ask({"route_weights": service})["weights"].items()}

    def file_weights(self, service: str) -> dict[str, int] | None:
        return _file_weights(self.directory, service)

    def apply(self, service: str, weights: dict[str, int] | None) -> dict[str, Any]:
        body = {"service": service, "weights": weights, "source": "rollout"}
        return self._ask({"weights": body})

    def event(
        self, type_: str, reason: str, obj: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        body = {"type": type_, "reason": reason, "object": obj, "message": message, "data": data}
        try:
            self._ask({"event": body})
        except CliError:  # a mesh up from before rollouts: its events lack the verdicts
            pass


class InProcessMesh:
    """A LocalMesh running in this process."""

    def __init__(self, mesh: Any) -> None:
        self.mesh = mesh
        self.state_dir = Path(mesh.state_dir)
        self.admin_url = mesh.admin_url
        self.gateway_url = mesh.gateway_url

    @property
    def directory(self) -> str:
        return str(self.mesh.directory)

    def stats_urls(self) -> list[str]:
        return list(self.mesh.envoy_admin_urls())

    def weights(self, service: str) -> dict[str, int]:
        return dict(self.mesh.route_weights(service))

    def file_weights(self, service: str) -> dict[str, int] | None:
        return _file_weights(self.mesh.directory, service)

    def apply(self, service: str, weights: dict[str, int] | None) -> dict[str, Any]:
        return dict(self.mesh.set_route_weights(service, weights, source="rollout"))

    def event(
        self, type_: str, reason: str, obj: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.mesh.events.record(type_, reason, obj, message, data)
