"""`mesh restart DEPLOYMENT`: a rolling restart of a running local mesh's replicas.

As `kubectl rollout restart`: every replica is replaced by the Deployment's strategy (a
surge replica starts on a new port, with `--sidecars` under a new name behind a new
sidecar, and is in Envoy's rotation before an old one drains), so no request fails.
The `mesh up` process owns the replicas and does it (`LocalMesh.restart`); this command
asks it through the state dir (mesh/control.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mesh.cli import CliError
from mesh.control import add_timeout_argument, ask, check_timeout
from mesh.state import DEFAULT_STATE_DIR, read_state

HELP = "rolling restart of a Deployment's replicas in a running mesh (no failed request)"
DEFAULT_TIMEOUT_S = 180.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("deployment", help="a Deployment of the running mesh (e.g. backend-v1)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    add_timeout_argument(parser, DEFAULT_TIMEOUT_S, "give up after this long")


def run(args: argparse.Namespace) -> int:
    check_timeout(args.timeout)
    state_dir = Path(args.state_dir)
    state = read_state(state_dir)
    deployments = list(dict.fromkeys(i.deployment for i in state.instances))
    if args.deployment not in deployments:
        raise CliError(
            f"no Deployment {args.deployment!r} in the running mesh (have: "
            f"{', '.join(deployments)})"
        )
    outcome = ask(state_dir, {"restart": args.deployment}, args.timeout)
    for line in outcome.get("lines", []):
        print(line)
    if not outcome.get("ok"):
        raise CliError(str(outcome.get("error", "restart failed")))
    return 0
