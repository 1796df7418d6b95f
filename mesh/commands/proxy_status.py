"""`mesh proxy-status [PROXY]`: istioctl proxy-status on the local mesh: is every Envoy
(the shared one, as the ingress gateway, and each sidecar under `--sidecars`) running
what the control loop last gave it? (mesh/proxy_config/sync.py says how it is read.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from mesh import admin
from mesh.cli import CliError
from mesh.commands.proxy_config import SIDECAR, admin_url, proxy_label
from mesh.errors import StateError
from mesh.proxy_config import tabwriter
from mesh.proxy_config.compare import report
from mesh.proxy_config.sync import VERBOSE_TYPES, ProxySync, read_sync, subscribed, verbose_cells
from mesh.state import DEFAULT_STATE_DIR, MeshState, read_state

HELP = "istioctl proxy-status: is every Envoy running the config the mesh last pushed?"
OUTPUTS = ("table", "json", "yaml")
CLUSTER = "Kubernetes"  # istiod's default cluster ID, what a one-cluster mesh shows
PADDING = 5  # status.go: tabwriter.Init(w, 0, 8, 5, ' ', 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "proxy", nargs="?", default="", metavar="PROXY", help="only this proxy (frontend-0)"
    )
    parser.add_argument("-o", "--output", default="table", help="one of table|json|yaml")
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        default=0,
        help="0: subscribed types; 1: a status column per xDS type",
    )
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")


def proxies(state: MeshState) -> list[tuple[str, str]]:
    """(proxy ID, admin URL) of every Envoy of the mesh, sorted by ID as istioctl sorts."""
    found = [(proxy_label(state, state.admin_url), state.admin_url)]
    for name, url in state.proxy_admin_urls.items():
        found.append((f"{name.removesuffix(SIDECAR)}.default", url))
    return sorted(found)


def _rfc3339(stamp: float | None) -> str | None:
    """STAMP as a protobuf Timestamp's JSON (istiod's `lastUpdated`), to the second."""
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(name: str, istiod: str, sync: ProxySync) -> dict[str, Any]:
    return {
        "proxy": name,
        "cluster": CLUSTER,
        "istiod": istiod,
        "version": sync.version,
        "types": {
            kind: {
                "status": t.status,
                "last_updated": _rfc3339(t.updated),
                "resources": {r: {"sent": s, "acked": a} for r, (s, a) in t.versions.items()},
            }
            for kind, t in sync.types.items()
        },
    }


def run(args: argparse.Namespace) -> int:
    output = args.output.lower()
    if output not in OUTPUTS:
        raise CliError(f"-o/--output {args.output!r}: expected one of {', '.join(OUTPUTS)}")
    if args.verbosity not in (0, 1):
        raise CliError(f"-v/--verbosity {args.verbosity}: expected 0 or 1")
    state = read_state(Path(args.state_dir))
    targets = proxies(state)
    if args.proxy:
        wanted = admin_url(state, args.proxy)
        targets = [(name, url) for name, url in targets if url == wanted]
        if output == "table":  # istioctl: one proxy's sent config against its running one
            sys.stdout.write(report(admin.get_json(f"{wanted}/config_dump")))
            return 0
    istiod = f"mesh-up-{state.pid}"  # the process that plays istiod
    rows: list[tuple[str, ProxySync]] = []
    with httpx.Client(timeout=admin.TIMEOUT_S) as client:
        for name, url in targets:
            try:
                rows.append((name, read_sync(url, client)))
            except StateError as exc:  # a sidecar restarting: not connected, as istiod sees it
                print(f"mesh proxy-status: {name}: {exc}", file=sys.stderr)
    if output != "table":
        data = [_json(name, istiod, sync) for name, sync in rows]
        if output == "json":
            print(json.dumps(data, indent=4))
        else:
            print(yaml.safe_dump(data, sort_keys=False), end="")
        return 0
    now = time.time()
    if args.verbosity:
        header = ["NAME", "CLUSTER", *VERBOSE_TYPES, "ISTIOD", "VERSION"]
        lines = [[n, CLUSTER, *verbose_cells(s.types, now), istiod, s.version] for n, s in rows]
    else:
        header = ["NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED TYPES"]
        lines = [[n, CLUSTER, istiod, s.version, subscribed(s.types)] for n, s in rows]
    sys.stdout.write(tabwriter.render([header, *lines], PADDING))
    return 0
