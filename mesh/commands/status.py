"""`mesh status`: the workloads of the running local mesh and Envoy's view of them."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import httpx

from mesh.state import DEFAULT_STATE_DIR, read_state

HELP = "workloads and Envoy cluster health of a running mesh"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _ready(client: httpx.Client, url: str) -> str:
    try:
        code = client.get(url).status_code
    except httpx.TransportError:
        return "down"
    return "ready" if code == 200 else f"not ready ({code})"


def _health(host: object) -> str:
    if getattr(host, "ejected", False):
        return "EJECTED"
    return "healthy" if getattr(host, "healthy", False) else "unhealthy"


def run(args: argparse.Namespace) -> int:
    from mesh import admin

    state = read_state(Path(args.state_dir))
    with httpx.Client(timeout=2.0) as client:
        readiness = {i.name: _ready(client, f"{i.url}/readyz") for i in state.instances}
        envoy_ready = _ready(client, f"{state.admin_url}/ready")
    clusters = admin.clusters(state.admin_url)
    if args.json:
        print(
            json.dumps(
                {
                    "manifests": state.manifests,
                    "gateway_urls": state.gateway_urls,
                    "admin_url": state.admin_url,
                    "workloads": [
                        {**asdict(i), "state": readiness[i.name]} for i in state.instances
                    ],
                    "envoy": envoy_ready,
                    "clusters": [asdict(c) for c in clusters],
                },
                indent=2,
            )
        )
        return 0
    print(f"mesh of {state.manifests}: gateway {', '.join(state.gateway_urls)}")
    print(f"{'WORKLOAD':<16}{'DEPLOYMENT':<14}{'PORT':<7}{'PID':<9}STATE")
    for i in state.instances:
        print(f"{i.name:<16}{i.deployment:<14}{i.port:<7}{i.pid:<9}{readiness[i.name]}")
    print(f"{'envoy':<16}{'':<14}{'':<7}{state.envoy_pid:<9}{envoy_ready} ({state.admin_url})")
    for c in clusters:
        s = c.stats
        print(f"\n{c.name}")
        hosts = ", ".join(f"{h.hostname or h.address} {_health(h)}" for h in c.hosts)
        print(f"  hosts: {hosts or '(none)'}")
        print(
            f"  requests {s['upstream_rq_total']}  5xx {s['upstream_rq_5xx']}  "
            f"pending overflow {s['upstream_rq_pending_overflow']}  "
            f"cx overflow {s['upstream_cx_overflow']}  "
            f"ejections active {s['outlier_detection.ejections_active']} "
            f"(total {s['outlier_detection.ejections_enforced_total']})"
        )
    return 0
