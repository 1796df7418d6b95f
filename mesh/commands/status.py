"""`mesh status`: the workloads of the running local mesh and Envoy's view of them."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from mesh.errors import StateError
from mesh.loop.generation import finding_line
from mesh.state import DEFAULT_STATE_DIR, MeshState, read_state

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


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "-"
    seconds = max(0, int(time.time() - stamp))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def config_line(config: dict) -> list[str]:
    """The generation in force, and the last refused one with why."""
    if not config:
        return []
    lines = [
        f"config generation {config.get('generation')} applied {_ago(config.get('applied_at'))} "
        f"(digest {config.get('digest')}, from {config.get('directory')})"
    ]
    refused = config.get("refused")
    if refused:
        first = (refused.get("findings") or [{"message": "refused"}])[0]
        lines.append(
            f"  generation {refused.get('generation')} refused {_ago(refused.get('at'))}: "
            f"{finding_line(first)}"
        )
    return lines


def system_row(
    proc: dict[str, Any], state: MeshState, envoy_ready: str, client: httpx.Client
) -> tuple[str, str, str, str, str, str, str | None]:
    """A row for one of the mesh's own processes: the shared Envoy, each sidecar (its
    Envoy's /ready, and its admin URL for `mesh proxy-config`), the trace receiver."""
    name = str(proc.get("name"))
    pid = proc.get("pid")
    sidecar_admin = state.proxy_admin_urls.get(name)
    if name == "envoy":
        status, where = envoy_ready, f"({state.admin_url})"
    elif sidecar_admin:
        status = _ready(client, f"{sidecar_admin}/ready") if pid else "restarting"
        where = f"({sidecar_admin})"
    else:
        status, where = ("running" if pid else "restarting"), ""
    last = proc.get("last_exit")
    return (
        name,
        "",
        "",
        str(pid or "-"),
        status,
        str(proc.get("restarts", 0)),
        f"{last} {where}".strip() if last else where or None,
    )


def run(args: argparse.Namespace) -> int:
    from mesh import admin

    state = read_state(Path(args.state_dir))
    with httpx.Client(timeout=2.0) as client:  # every Envoy's /ready: the shared one first
        envoy_ready = _ready(client, f"{state.admin_url}/ready")
        system = (
            [] if args.json else [system_row(p, state, envoy_ready, client) for p in state.system]
        )
    try:
        clusters = admin.clusters(state.admin_url)
    except StateError:
        clusters = []  # Envoy restarting: the kubelet brings it back
    if args.json:
        print(
            json.dumps(
                {
                    "manifests": state.manifests,
                    "gateway_urls": state.gateway_urls,
                    "admin_url": state.admin_url,
                    "workloads": [asdict(i) for i in state.instances],
                    "envoy": envoy_ready,
                    "system": state.system,
                    "config": state.config,
                    "clusters": [asdict(c) for c in clusters],
                },
                indent=2,
            )
        )
        return 0
    print(f"mesh of {state.manifests}: gateway {', '.join(state.gateway_urls)}")
    for line in config_line(state.config):
        print(line)
    rows = [
        (i.name, i.deployment, str(i.port), str(i.pid), i.state, str(i.restarts), i.last_exit)
        for i in state.instances
    ]
    rows += system
    width = max([16, *(len(r[0]) + 2 for r in rows)])
    print(
        f"{'WORKLOAD':<{width}}{'DEPLOYMENT':<14}{'PORT':<7}{'PID':<9}{'STATE':<13}"
        f"{'RESTARTS':<10}LAST EXIT"
    )
    for name, deployment, port, pid, status, restarts, last in rows:
        print(
            f"{name:<{width}}{deployment:<14}{port:<7}{pid:<9}{status:<13}{restarts:<10}"
            f"{last or '-'}"
        )
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
