"""One replica as the local kubelet sees it: what to run, and the state it is in.

A `Pod` is one process run after run: the kubelet restarts it in place (same name, same
port, as a restarted container keeps its pod's IP), and counts the restarts. A rolling
update or a scale-down replaces it with a new Pod (a new uid and port, the same name).

States, as `kubectl get pods` says them:
    starting     the process runs; startup probe or first readiness not passed yet
    ready        the readinessProbe passes (in the endpoints)
    not-ready    it ran ready and its readinessProbe now fails (out of the endpoints)
    terminating  being stopped (preStop, SIGTERM, SIGKILL); out of the endpoints
    crash-loop   the process exited; waiting out the back-off before a restart
"""

from __future__ import annotations

import itertools
import signal
from dataclasses import dataclass, field

from mesh.processes import Child
from mesh.translate.probes import PodProbes

STARTING = "starting"
READY = "ready"
NOT_READY = "not-ready"
TERMINATING = "terminating"
CRASH_LOOP = "crash-loop"

# Restart back-off, the kubelet's shape at a local scale: the first restart at once, then
# 1 s doubling to 30 s (kubelet: 10 s doubling to 5 min), reset once a process has run
# 60 s (kubelet: 10 min). A demo's "kill it and watch it come back" then takes a second.
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
BACKOFF_RESET_S = 60.0

_uids = itertools.count(1)


def next_uid() -> int:
    return next(_uids)


@dataclass(frozen=True)
class PodTemplate:
    """What every replica of one Deployment runs. DIGEST changes with anything that
    needs a new process (image, env, probes, lifecycle): a rolling update."""

    deployment: str
    image: str
    argv: tuple[str, ...]
    probes: PodProbes
    pre_stop_s: float
    grace_s: float
    digest: str


@dataclass(eq=False)
class Pod:
    """One replica: its template, its own env and port, and what the kubelet saw."""

    name: str
    template: PodTemplate
    env: dict[str, str]
    port: int
    endpoint_port: int  # where the mesh sends its traffic (the sidecar's, with sidecars)
    uid: int = field(default_factory=next_uid)
    state: str = STARTING
    ready: bool = False
    terminating: bool = False
    restarts: int = 0
    last_exit: str | None = None
    child: Child | None = None
    run: int = 0  # bumped at every (re)start: a probe worker of an older run stops
    started_at: float = 0.0
    restart_at: float | None = None
    backoff_s: float = 0.0
    kill_reason: str | None = None

    @property
    def deployment(self) -> str:
        return self.template.deployment

    @property
    def pid(self) -> int | None:
        return self.child.popen.pid if self.child is not None else None

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def published(self) -> bool:
        """In the Service's endpoints: ready and not being stopped."""
        return self.ready and not self.terminating


def describe_exit(returncode: int | None) -> str:
    """`exit 1`, `exit -9 (SIGKILL)`: how a process ended, in one word or two."""
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"exit {returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"exit {returncode}"
    return f"exit {returncode}"


def next_backoff(current: float) -> float:
    """The delay before the restart after the one that waited CURRENT."""
    if current <= 0:
        return BACKOFF_INITIAL_S
    return min(current * 2, BACKOFF_MAX_S)
