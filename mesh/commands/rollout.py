"""`mesh rollout SERVICE --to SUBSET`: an automated canary on the running mesh, as Flagger.

Each step sends a share of SERVICE's default route to the canary (a new config
generation: the files stay as they are), waits until Envoy serves it, measures one
interval of the canary's and the stable subset's outcomes from Envoy's per-subset
cluster stats, and judges: error rate, p99, enough traffic. Every step passes: promoted
(100% to the canary). A step fails: rolled back to the weights as they were. With an
HTTPRoute bound to SERVICE (GAMMA), the canary and stable are Services its backendRefs
name, and the weights of its default rule's backendRefs move (mesh/loop/weights.py).

Exit status: 0 promoted, 1 rolled back, 2 bad input (nothing changed), 130 interrupted
(the weights as they were restored first).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from mesh.cli import CliError
from mesh.state import DEFAULT_STATE_DIR

HELP = "automated canary: step a subset's weight up on live metrics, promote or roll back"
MAX_LOAD_QPS = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", help="the Service whose default route moves (backend-service)")
    parser.add_argument(
        "--to",
        metavar="SUBSET",
        help="the canary subset (v2); with an HTTPRoute bound to SERVICE, a backendRef's "
        "Service (backend-v2)",
    )
    parser.add_argument(
        "--from",
        dest="stable",
        metavar="SUBSET",
        help="the stable subset (default: the one the default route sends most to now)",
    )
    parser.add_argument(
        "--steps",
        default="10,25,50,100",
        help="the canary's percent at each step, increasing, ending in 100 (10,25,50,100)",
    )
    parser.add_argument(
        "--interval", default="30s", help="how long each step measures (30s; 1m, 500ms)"
    )
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=1.0,
        metavar="PERCENT",
        help="the canary's highest share of 5xx in a step (default 1)",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        default=500.0,
        metavar="MS",
        help="the canary's highest p99 latency in a step (default 500)",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=20,
        metavar="N",
        help="canary requests a step needs, else 'not enough traffic' (default 20)",
    )
    parser.add_argument(
        "--load",
        type=float,
        metavar="QPS",
        help="send this many requests a second through the gateway (Flagger's load tester)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="give the default route back to what the files say (a promoted rollout's "
        "weights stay until then)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="once promoted, write the weights into the VirtualService's (or HTTPRoute's) file and "
        "hand the "
        "route back to the files (the file's leading comments are kept, others are not)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")


def check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.max_error_rate <= 100:
        raise CliError(f"--max-error-rate {args.max_error_rate:g}: a percent from 0 to 100")
    if args.max_p99_ms <= 0:
        raise CliError(f"--max-p99-ms {args.max_p99_ms:g}: must be more than 0")
    if args.min_requests < 0:
        raise CliError(f"--min-requests {args.min_requests}: must be 0 or more")
    if args.load is not None and not 0 < args.load <= MAX_LOAD_QPS:
        raise CliError(f"--load {args.load:g}: requests a second, more than 0 and at most 1000")


def reset(target: Any, state_dir: Path, service: str) -> int:
    """SERVICE's default route as the files say again, once Envoy serves it."""
    import httpx

    from mesh.rollout.plan import RolloutLock
    from mesh.rollout.run import SERVE_TIMEOUT_S
    from mesh.rollout.served import wait_served

    with RolloutLock(state_dir, service):
        target.weights(service)  # CliError for a Service without a default route
        files = target.file_weights(service)
        outcome = target.apply(service, None)
        if outcome.get("result") == "refused":
            raise CliError(f"generation {outcome.get('generation')} refused")
        if files is not None:
            with httpx.Client(timeout=10.0) as client:
                want = {s: w for s, w in files.items() if w}
                if not wait_served(target.admin_url, service, want, client, SERVE_TIMEOUT_S):
                    raise CliError(f"Envoy did not serve {want} within {SERVE_TIMEOUT_S:.0f}s")
        shown = ", ".join(f"{s} {w}%" for s, w in (files or {}).items() if w) or "?"
        print(f"{service}: the default route is the files' again; Envoy serves {shown}")
    return 0


def write(target: Any, plan: Any, weights: dict[str, int], console: Any) -> str | None:
    """--write after a promotion: the file says WEIGHTS, then the route is the files'
    again. The path written, or None (the reason on stderr)."""
    import httpx

    from mesh.rollout.run import SERVE_TIMEOUT_S
    from mesh.rollout.served import wait_served
    from mesh.rollout.write import write_weights

    try:
        path = write_weights(Path(target.directory), plan.service, weights)
        target.apply(plan.service, None)
        with httpx.Client(timeout=10.0) as client:
            if not wait_served(target.admin_url, plan.service, weights, client, SERVE_TIMEOUT_S):
                raise CliError(f"Envoy did not serve {weights} from the files")
    except CliError as exc:
        print(f"mesh rollout: {exc}", file=sys.stderr)
        return None
    console.line(f"wrote {path}: the route is the files' again")
    return str(path)


def _interrupt(signum: int, frame: Any) -> None:
    # the first Ctrl-C/SIGTERM starts the restore; later ones must not cut it short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from mesh.rollout.judge import Thresholds
    from mesh.rollout.plan import RolloutLock, make_plan
    from mesh.rollout.report import Console
    from mesh.rollout.run import Rollout
    from mesh.rollout.target import RemoteMesh

    state_dir = Path(args.state_dir)
    if args.reset:
        if args.to is not None:
            raise CliError("--reset takes no --to: it ends the rollout's hold on the route")
        return reset(RemoteMesh(state_dir), state_dir, args.service)
    if args.to is None:
        raise CliError("the canary subset is missing: --to SUBSET (or --reset)")
    target = RemoteMesh(state_dir)
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with RolloutLock(state_dir, args.service):
            check_numbers(args)
            if args.write:
                from mesh.rollout.write import check_writable

                check_writable(Path(target.directory), args.service)
            limits = Thresholds(args.max_error_rate, args.max_p99_ms, args.min_requests)
            plan = make_plan(
                target, args.service, args.to, args.stable, args.steps, args.interval, limits
            )
            console = Console(sys.stdout, quiet=args.json)
            console.line(
                f"rollout {plan.service}: {plan.stable} -> {plan.canary}, steps "
                f"{','.join(map(str, plan.steps))}%, interval {plan.interval_s:g}s, max error "
                f"rate {args.max_error_rate:g}%, max p99 {args.max_p99_ms:g}ms, min requests "
                f"{args.min_requests}" + (f", load {args.load:g} req/s" if args.load else "")
            )
            outcome = Rollout(target, plan, console, args.load).run()
            written = None
            if args.write and outcome.result == "promoted":
                written = write(target, plan, outcome.weights, console)
    except KeyboardInterrupt:  # before the rollout changed anything
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        data = outcome.to_dict(plan.service, plan.canary, plan.stable)
        data["written"] = written
        print(json.dumps(data, indent=2))
    if args.write and outcome.result == "promoted" and written is None:
        return 1
    if outcome.interrupted:
        return 130
    return 0 if outcome.result == "promoted" else 1
