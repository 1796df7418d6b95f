"""`mesh apply [DIR]`: apply a manifest directory to the running mesh, as `kubectl apply -k`.

The running `mesh up` builds a new generation from DIR (default: the directory it runs):
read, `mesh check`'s errors, translate, `envoy --mode validate`. A generation that fails
a step is refused with its findings and nothing that runs changes; otherwise Envoy gets
it without a restart and the Deployments are reconciled (scale, rolling update). `mesh
up` also applies its directory by itself whenever a file in it changes.

Exit status: 0 applied (or unchanged), 1 refused, 2 bad input / no running mesh.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mesh.cli import CliError
from mesh.control import add_timeout_argument, ask, check_timeout
from mesh.loop.generation import finding_line
from mesh.state import DEFAULT_STATE_DIR

HELP = "apply a manifest directory to the running mesh (a new config generation)"
DEFAULT_TIMEOUT_S = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", help="manifest directory (default: the running one)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_timeout_argument(parser, DEFAULT_TIMEOUT_S, "give up waiting after this long")


def run(args: argparse.Namespace) -> int:
    check_timeout(args.timeout)
    directory = None
    if args.dir is not None:
        path = Path(args.dir)
        if not path.is_dir():
            raise CliError(f"{args.dir}: not a directory")
        directory = str(path.resolve())
    outcome = ask(Path(args.state_dir), {"apply": directory}, args.timeout)
    if not outcome.get("ok"):
        raise CliError(str(outcome.get("error", "apply failed")))
    if args.json:
        print(json.dumps({k: v for k, v in outcome.items() if k not in ("ok", "lines")}, indent=2))
    else:
        print(describe(outcome))
    return 1 if outcome.get("result") == "refused" else 0


def describe(outcome: dict) -> str:
    number, result = outcome.get("generation"), outcome.get("result")
    if result == "refused":
        lines = [f"generation {number} refused; the running config stays as it was:"]
        lines += [f"  {finding_line(f)}" for f in outcome.get("findings", [])]
        return "\n".join(lines)
    if result == "unchanged":
        return f"unchanged: generation {number} already serves this tree"
    lines = [f"generation {number} applied: {', '.join(outcome.get('changes') or []) or '-'}"]
    lines += [f"  problem: {p}" for p in outcome.get("problems", [])]
    return "\n".join(lines)
