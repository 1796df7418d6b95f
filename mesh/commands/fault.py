"""`mesh fault WORKLOAD[-N]`: flip the fault toggle of running replicas (/admin/fault)."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from mesh.cli import CliError
from mesh.state import DEFAULT_STATE_DIR, InstanceState, read_state

HELP = "flip the fault toggle of a running replica"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workload", help="a replica (backend-v1-0) or a Deployment (backend-v1: all its replicas)"
    )
    parser.add_argument("--status", type=int, default=503, help="status of a faulted response")
    parser.add_argument("--error-rate", type=float, help="share of requests failed (default 1)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay added to requests")
    parser.add_argument("--delay-rate", type=float, help="share of requests delayed (default 1)")
    parser.add_argument("--clear", action="store_true", help="turn the fault off")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")


def targets(instances: list[InstanceState], workload: str) -> list[InstanceState]:
    exact = [i for i in instances if i.name == workload]
    found = exact or [i for i in instances if i.deployment == workload]
    if not found:
        names = ", ".join(i.name for i in instances)
        raise CliError(f"no workload {workload!r} in the running mesh (have: {names})")
    return found


def fault_body(args: argparse.Namespace) -> dict[str, float | int]:
    delay = args.delay_ms
    error_rate = args.error_rate if args.error_rate is not None else (0.0 if delay else 1.0)
    delay_rate = args.delay_rate if args.delay_rate is not None else (1.0 if delay else 0.0)
    return {
        "status": args.status,
        "error_rate": error_rate,
        "delay_ms": delay,
        "delay_rate": delay_rate,
    }


def run(args: argparse.Namespace) -> int:
    state = read_state(Path(args.state_dir))
    chosen = targets(state.instances, args.workload)
    body = None if args.clear else fault_body(args)
    with httpx.Client(timeout=5.0) as client:
        for instance in chosen:
            url = f"{instance.url}/admin/fault"
            try:
                if body is None:
                    response = client.delete(url)
                else:
                    response = client.put(url, json=body)
            except httpx.TransportError as exc:
                raise CliError(
                    f"{instance.name}: {url} does not answer ({type(exc).__name__})"
                ) from exc
            if response.status_code >= 400:
                raise CliError(
                    f"{instance.name}: {response.status_code} from {url}: {response.text.strip()}"
                )
            print(f"{instance.name}: {response.text.strip() or 'ok'}")
    return 0
