"""`mesh restart DEPLOYMENT`: a rolling restart of a running local mesh's replicas.

Who does it: the `mesh up` process started every replica and supervises them (a dead
child stops the mesh, Ctrl-C stops them all), so it stays their only owner and does the
restart itself (`LocalMesh.restart`). This command only asks it, through files in the
state dir, which both already share and which needs no port:

    <state-dir>/control/<id>.request.json   {"restart": "backend-v1"}   written by us
    <state-dir>/control/<id>.result.json    {"ok": true, "lines": [...]} written by mesh up

`mesh up` looks for requests on its supervision tick (`serve_requests`); we wait for
the result, bounded by --timeout, and give up early if `mesh up` exits.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mesh.cli import CliError
from mesh.state import DEFAULT_STATE_DIR, pid_alive, read_state, write_json

HELP = "rolling restart of a Deployment's replicas in a running mesh (no failed request)"
CONTROL_DIR = "control"
REQUEST_SUFFIX = ".request.json"
RESULT_SUFFIX = ".result.json"
DEFAULT_TIMEOUT_S = 180.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("deployment", help="a Deployment of the running mesh (e.g. backend-v1)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up after this long (default {DEFAULT_TIMEOUT_S:g})",
    )


# ------------------------------------------------------------------ the `mesh up` side


def _recorder(lines: list[str], say: Callable[[str], None]) -> Callable[[str], None]:
    def record(line: str) -> None:
        lines.append(line)
        say(f"mesh restart: {line}")

    return record


def serve_requests(mesh: Any, say: Callable[[str], None] = print) -> int:
    """Carry out the pending restart requests of MESH's state dir; how many were handled.

    Called by `mesh up` between supervision ticks, in its main thread: the restart runs
    while nothing else touches the children, and Ctrl-C during it stops everything.
    """
    control = Path(mesh.state_dir) / CONTROL_DIR
    if not control.is_dir():
        return 0
    handled = 0
    for request in sorted(control.glob(f"*{REQUEST_SUFFIX}")):
        result = control / request.name.replace(REQUEST_SUFFIX, RESULT_SUFFIX)
        lines: list[str] = []
        record = _recorder(lines, say)
        try:
            deployment = json.loads(request.read_text())["restart"]
            if not isinstance(deployment, str):
                raise TypeError("restart must name a Deployment")
            mesh.restart(deployment, say=record)
            outcome: dict[str, Any] = {"ok": True, "lines": lines}
        except Exception as exc:  # any failure goes back to the caller, the mesh keeps running
            record(f"failed: {exc}")
            outcome = {"ok": False, "lines": lines, "error": str(exc)}
        request.unlink(missing_ok=True)
        write_json(result, outcome)
        handled += 1
    return handled


# ------------------------------------------------------------------ the command


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise CliError(f"--timeout {args.timeout:g}: must be more than 0 seconds")
    state_dir = Path(args.state_dir)
    state = read_state(state_dir)
    deployments = list(dict.fromkeys(i.deployment for i in state.instances))
    if args.deployment not in deployments:
        raise CliError(
            f"no Deployment {args.deployment!r} in the running mesh (have: "
            f"{', '.join(deployments)})"
        )
    control = state_dir / CONTROL_DIR
    control.mkdir(parents=True, exist_ok=True)
    ident = uuid.uuid4().hex
    request = control / f"{ident}{REQUEST_SUFFIX}"
    result = control / f"{ident}{RESULT_SUFFIX}"
    write_json(request, {"restart": args.deployment})
    deadline = time.monotonic() + args.timeout
    try:
        while not result.exists():
            if not pid_alive(state.pid):
                raise CliError(f"the mesh (pid {state.pid}) exited before the restart finished")
            if time.monotonic() > deadline:
                raise CliError(
                    f"no answer from the mesh (pid {state.pid}) within {args.timeout:g}s"
                )
            time.sleep(0.1)  # mesh up answers on its supervision tick
    finally:
        request.unlink(missing_ok=True)  # never left for a later mesh to act on
    outcome = json.loads(result.read_text())
    result.unlink(missing_ok=True)
    for line in outcome.get("lines", []):
        print(line)
    if not outcome.get("ok"):
        raise CliError(str(outcome.get("error", "restart failed")))
    return 0
