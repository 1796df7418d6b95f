"""Ask the running `mesh up` to act: requests and answers as files in its state dir.

The `mesh up` process owns every replica and the Envoy config (it is the kubelet and
istiod of the local mesh), so commands that change the mesh (`mesh restart`, `mesh
apply`) ask it rather than act themselves, through files in the state dir that both
already share and that need no port:

    <state-dir>/control/<id>.request.json   {"restart": "backend-v1"} | {"apply": "DIR"}
                                            | {"weights": {"service", "weights", "source"}}
                                            | {"route_weights": "backend-service"}
                                            | {"event": {"type", "reason", "object", "message",
                                                         "data"?}}
    <state-dir>/control/<id>.result.json    {"ok": true, "lines": [...], ...}

`mesh up` looks for requests on its supervision tick (`serve_requests`); the command
waits for the result, bounded by its --timeout, and gives up early if `mesh up` exits.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesh.cli import CliError
from mesh.state import pid_alive, read_state, write_json

CONTROL_DIR = "control"
REQUEST_SUFFIX = ".request.json"
RESULT_SUFFIX = ".result.json"


def _recorder(lines: list[str], say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    def record(line: str) -> None:
        lines.append(line)
        say(f"{prefix}{line}")

    return record


def add_timeout_argument(
    parser: Any, default: float, what: str = "give up after this long"
) -> None:
    """--timeout SECONDS of a command that waits for `mesh up`'s answer."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"{what} (default {default:g})",
    )


def check_timeout(seconds: float) -> None:
    if seconds <= 0:
        raise CliError(f"--timeout {seconds:g}: must be more than 0 seconds")


def serve_requests(mesh: Any, say: Callable[[str], None] = print) -> int:
    """Carry out the pending requests of MESH's state dir; how many were handled.

    Called by `mesh up` between supervision ticks, in its main thread: Ctrl-C during a
    request stops everything."""
    control = Path(mesh.state_dir) / CONTROL_DIR
    if not control.is_dir():
        return 0
    handled = 0
    for request in sorted(control.glob(f"*{REQUEST_SUFFIX}")):
        result = control / request.name.replace(REQUEST_SUFFIX, RESULT_SUFFIX)
        lines: list[str] = []
        outcome: dict[str, Any]
        try:
            body = json.loads(request.read_text())
            if "restart" in body:
                record = _recorder(lines, say, "mesh restart: ")
                deployment = body["restart"]
                if not isinstance(deployment, str):
                    raise TypeError("restart must name a Deployment")
                mesh.restart(deployment, say=record)
                outcome = {"ok": True, "lines": lines}
            elif "apply" in body:
                directory = body["apply"]
                outcome = {"ok": True, "lines": lines, **mesh.apply(directory, source="mesh apply")}
            elif "weights" in body:  # a rollout's step: {"weights": {service, weights|null}}
                step = body["weights"]
                applied = mesh.set_route_weights(
                    step["service"], step.get("weights"), source=step.get("source", "rollout")
                )
                outcome = {"ok": True, "lines": lines, **applied}
            elif "route_weights" in body:  # {"route_weights": service}
                weights = mesh.route_weights(body["route_weights"])
                outcome = {"ok": True, "lines": lines, "weights": weights}
            elif "event" in body:  # a rollout's step, verdict: {"event": {type, reason, ...}}
                event = body["event"]
                fields = [event.get(k) for k in ("type", "reason", "object", "message")]
                if not all(isinstance(f, str) for f in fields):
                    raise TypeError("event needs type, reason, object and message (strings)")
                if fields[0] not in ("Normal", "Warning"):
                    raise ValueError(f"event type {fields[0]!r}: Normal or Warning")
                data = event.get("data")
                if data is not None and not isinstance(data, dict):
                    raise TypeError("event data must be a JSON object")
                mesh.events.record(*fields, data=data)
                outcome = {"ok": True, "lines": lines}
            else:
                raise ValueError(f"unknown request {sorted(body)}")
        except Exception as exc:  # any failure goes back to the caller, the mesh keeps running
            say(f"mesh: request failed: {exc}")
            outcome = {"ok": False, "lines": lines, "error": str(exc)}
        request.unlink(missing_ok=True)
        write_json(result, outcome)
        handled += 1
    return handled


def ask(state_dir: Path, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send BODY to the `mesh up` of STATE_DIR and wait for its answer (CliError if it
    exits or does not answer within TIMEOUT)."""
    state = read_state(state_dir)
    control = state_dir / CONTROL_DIR
    control.mkdir(parents=True, exist_ok=True)
    ident = uuid.uuid4().hex
    request = control / f"{ident}{REQUEST_SUFFIX}"
    result = control / f"{ident}{RESULT_SUFFIX}"
    write_json(request, body)
    deadline = time.monotonic() + timeout
    try:
        while not result.exists():
            if not pid_alive(state.pid):
                raise CliError(f"the mesh (pid {state.pid}) exited before it answered")
            if time.monotonic() > deadline:
                raise CliError(f"no answer from the mesh (pid {state.pid}) within {timeout:g}s")
            time.sleep(0.05)  # mesh up answers on its supervision tick
    finally:
        request.unlink(missing_ok=True)  # never left for a later mesh to act on
    outcome: dict[str, Any] = json.loads(result.read_text())
    result.unlink(missing_ok=True)
    return outcome
