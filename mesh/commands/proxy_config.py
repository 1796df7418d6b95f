"""`mesh proxy-config clusters|listeners|routes|endpoints|secret|bootstrap|all|log [PROXY]`:
istioctl's proxy-config on the local mesh's live Envoy.

On a cluster, `istioctl proxy-config clusters deploy/frontend` shows what istiod gave
one Envoy; here the same tables (mesh/proxy_config, following istioctl's writers) come
from the shared Envoy's admin (the ingress gateway, and every sidecar's outbound side)
or, with `mesh up --sidecars`, from one replica's sidecar, so the lesson works with no
cluster.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mesh import admin
from mesh.cli import CliError
from mesh.proxy_config import dump, tabwriter
from mesh.proxy_config.listeners import ListenerFilter, listeners_table
from mesh.proxy_config.logging import LevelError, set_levels
from mesh.proxy_config.secrets import certificates, secret_items, secrets_table
from mesh.proxy_config.summary import Filters, NothingFound, full_summary
from mesh.proxy_config.writers import (
    ClusterFilter,
    EndpointFilter,
    Table,
    clusters_table,
    endpoints_table,
    routes_table,
    selected_statuses,
    sorted_clusters,
    sorted_routes,
)
from mesh.state import DEFAULT_STATE_DIR, MeshState, read_state

HELP = "istioctl proxy-config: what a live Envoy runs (clusters, listeners, routes, ...)"
SIDECAR = ".sidecar"
OUTPUTS = ("short", "json", "yaml")
DIRECTIONS = ("inbound", "outbound")
# envoy.config.core.v3.HealthStatus names, what --status is compared with
HEALTH = ("UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED")
LISTENER_TYPES = ("HTTP", "TCP", "HTTP+TCP", "UNKNOWN")


def _common(parser: argparse.ArgumentParser, default_output: str = "short") -> None:
    parser.add_argument(
        "proxy",
        nargs="?",
        default="",
        metavar="PROXY",
        help="a replica's sidecar (backend-v1-0, with `mesh up --sidecars`); "
        "default: the shared Envoy",
    )
    parser.add_argument("-o", "--output", default=default_output, help="one of short|json|yaml")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = sub.add_parser("clusters", help="the clusters (services, subsets) Envoy knows")
    _common(p)
    p.add_argument("--fqdn", default="", help="clusters whose name holds this FQDN")
    p.add_argument("--port", type=int, default=0, help="clusters of this port")
    p.add_argument("--subset", default="", help="clusters whose name holds this subset")
    p.add_argument("--direction", default="", help="inbound or outbound")
    p = sub.add_parser("listeners", help="the listeners and where each filter chain goes")
    _common(p)
    p.add_argument("--port", type=int, default=0, help="listeners on this port")
    p.add_argument("--address", default="", help="listeners on this address")
    p.add_argument("--type", default="", help="HTTP, TCP, HTTP+TCP or UNKNOWN")
    p = sub.add_parser("routes", help="the route tables: virtual hosts, matches")
    _common(p)
    p.add_argument("--name", default="", help="the route table of this name")
    p = sub.add_parser("endpoints", help="each cluster's endpoints with their health")
    _common(p)
    p.add_argument("--cluster", default="", help="endpoints of this cluster")
    p.add_argument("--status", default="", help="HEALTHY, UNHEALTHY, DRAINING, ...")
    p.add_argument("--port", type=int, default=0, help="endpoints on this port")
    p.add_argument("--address", default="", help="endpoints on this address")
    p = sub.add_parser("secret", help="the certificates Envoy holds (identity, root CA)")
    _common(p)
    p = sub.add_parser("bootstrap", help="the bootstrap Envoy started from (-o short: version)")
    _common(p, default_output="json")
    p = sub.add_parser("all", help="every table above in one summary (-o json: the dump)")
    _common(p)
    p.add_argument("--with-headers", action="store_true", help="a header before each table")
    # proxyconfig.go allConfigCmd: each flag filters the tables that have that field
    p.add_argument("--fqdn", default="", help="clusters whose name holds this FQDN")
    p.add_argument("--subset", default="", help="clusters whose name holds this subset")
    p.add_argument("--direction", default="", help="clusters: inbound or outbound")
    p.add_argument("--port", type=int, default=0, help="clusters, listeners, endpoints")
    p.add_argument("--address", default="", help="listeners and endpoints on this address")
    p.add_argument("--type", default="", help="listeners: HTTP, TCP, HTTP+TCP or UNKNOWN")
    p.add_argument("--name", default="", help="the route table of this name")
    p = sub.add_parser("log", help="Envoy's logger levels; --level or -r sets them")
    _common(p)
    p.add_argument(
        "--level",
        default="",
        help="LEVEL for every logger, or LOGGER:LEVEL,... (trace, debug, info, warning, "
        "error, critical, off)",
    )
    p.add_argument("-r", "--reset", action="store_true", help="every logger back to warning")


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value and value.lower() not in {a.lower() for a in allowed}:
        raise CliError(f"{flag} {value!r}: expected one of {', '.join(allowed)}")


def validate(args: argparse.Namespace) -> None:
    """Refuse a value istioctl would only silently match nothing with."""
    _one_of("-o/--output", args.output, OUTPUTS)
    _one_of("--direction", getattr(args, "direction", ""), DIRECTIONS)
    _one_of("--status", getattr(args, "status", ""), HEALTH)
    _one_of("--type", getattr(args, "type", ""), LISTENER_TYPES)
    if getattr(args, "port", 0) < 0:
        raise CliError(f"--port {args.port}: not a port")
    if args.kind == "log" and args.reset and args.level:
        raise CliError("--level cannot be combined with --reset")
    if args.kind == "log" and args.output.lower() != "short":
        raise CliError("--output is not applicable for this command")


GATEWAY = "istio-ingressgateway"  # what the shared Envoy plays at the edge
KINDS = ("deploy/", "deployment/", "deployments/", "pod/", "pods/")


def admin_url(state: MeshState, proxy: str) -> str:
    """The admin of PROXY, named as istioctl names a target: nothing or `envoy` is the
    shared Envoy, and so is the ingress gateway (`deploy/istio-ingressgateway`); a
    replica (`frontend-0`, `pod/frontend-0`, `frontend-0.default`) or a Deployment
    (`deploy/frontend`: its first replica) is that replica's sidecar under
    `mesh up --sidecars`, else the shared Envoy, which plays every sidecar's outbound side
    (said on stderr)."""
    name = proxy.removesuffix(SIDECAR)
    kind = next((k for k in KINDS if name.startswith(k)), "")
    name = name.removeprefix(kind)
    name = name.split(".", 1)[0]  # POD.NAMESPACE, as istioctl takes it
    if not name or name == "envoy" or name.startswith(GATEWAY):
        return state.admin_url
    instances = sorted(i.name for i in state.instances)
    if kind.startswith("deploy"):
        found = [i.name for i in state.instances if i.deployment == name]
        instance = min(found) if found else ""
    else:
        instance = name if name in instances else ""
    if not instance:
        deployments = sorted({i.deployment for i in state.instances})
        raise CliError(
            f"unknown proxy {proxy!r} (replicas: {', '.join(instances) or 'none'}; "
            f"deployments: {', '.join(f'deploy/{d}' for d in deployments) or 'none'}; "
            "nothing for the shared Envoy)"
        )
    sidecars = state.proxy_admin_urls
    if not sidecars:
        print(
            f"mesh proxy-config: no sidecars (mesh up --sidecars adds them): the shared Envoy "
            f"plays {instance}'s",
            file=sys.stderr,
        )
        return state.admin_url
    return sidecars[instance + SIDECAR]


def proxy_label(state: MeshState, url: str) -> str:
    """How istioctl names the proxy of URL (POD.NAMESPACE): a sidecar's replica, or the
    shared Envoy as the ingress gateway it plays."""
    for name, sidecar_admin in state.proxy_admin_urls.items():
        if sidecar_admin == url:
            return f"{name.removesuffix(SIDECAR)}.default"
    return f"{GATEWAY}.istio-system"


Filter = ClusterFilter | ListenerFilter | EndpointFilter | str


def fetched(args: argparse.Namespace, url: str) -> tuple[list[dict[str, Any]], Filter]:
    """KIND's entries from the Envoy at URL (its /clusters statuses for endpoints) and the
    filter the flags make (a route table's name for routes); "no KIND found" as
    istioctl's retrieveSorted*Slice says it."""
    if args.kind == "endpoints":
        flt = EndpointFilter(args.address, args.port, args.cluster, args.status)
        return dump.cluster_statuses(url), flt
    config = dump.fetch(url)
    entries: list[dict[str, Any]] = getattr(config, args.kind)
    if not entries:
        raise CliError(f"no {args.kind} found")
    if args.kind == "clusters":
        return entries, ClusterFilter(args.fqdn, args.port, args.subset, args.direction)
    if args.kind == "listeners":
        return entries, ListenerFilter(args.address, args.port, args.type)
    return entries, args.name


def table(args: argparse.Namespace, url: str) -> Table:
    """The summary table of KIND, as istioctl's Print*Summary."""
    entries, flt = fetched(args, url)
    if isinstance(flt, EndpointFilter):
        return endpoints_table(entries, flt)
    if isinstance(flt, ClusterFilter):
        return clusters_table(entries, flt)
    if isinstance(flt, ListenerFilter):
        return listeners_table(entries, flt)
    return routes_table(entries, flt)


def selected(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    """The raw entries -o json|yaml prints, as istioctl's Print*Dump: the selected
    clusters, listeners or route tables, or the /clusters entries of the selected
    endpoints."""
    entries, flt = fetched(args, url)
    if isinstance(flt, EndpointFilter):
        return selected_statuses(entries, flt)
    if isinstance(flt, ClusterFilter):
        return [c for c in sorted_clusters(entries) if flt.verify(str(c.get("name", "")))]
    if isinstance(flt, ListenerFilter):
        return [ln for ln in entries if flt.verify(ln)]
    return [r for r in sorted_routes(entries) if not flt or r.get("name") == flt]


def summary_filters(args: argparse.Namespace) -> Filters:
    """`all`'s flags as each table's filter, as allConfigCmd builds them (the endpoints
    take --address and --port; --cluster and --status are not flags of `all`)."""
    return Filters(
        ClusterFilter(args.fqdn, args.port, args.subset, args.direction),
        ListenerFilter(args.address, args.port, args.type),
        args.name,
        EndpointFilter(args.address, args.port),
    )


def _print(output: str, rows: Table | None, data: Any) -> None:
    if output == "short" and rows is not None:
        sys.stdout.write(tabwriter.render(*rows))
    elif output == "json":
        print(json.dumps(data, indent=4))
    else:
        print(yaml.safe_dump(data, sort_keys=True, default_flow_style=False), end="")


def run(args: argparse.Namespace) -> int:
    validate(args)
    state = read_state(Path(args.state_dir))
    url = admin_url(state, args.proxy)
    output = args.output.lower()
    if args.kind == "secret":  # writer.go: a table, or the items as JSON
        items = secret_items(certificates(url), dt.datetime.now(dt.UTC))
        if output == "short" and not items:
            print("No secret items to show.")
        else:
            _print(output, secrets_table(items), items)
    elif args.kind == "all":  # configdump.go PrintFullSummary, or the whole config dump
        if output == "short":
            try:
                sys.stdout.write(full_summary(url, summary_filters(args), args.with_headers))
            except NothingFound as exc:
                raise CliError(str(exc)) from None
        else:
            _print(output, None, admin.get_json(f"{url}/config_dump"))
    elif args.kind == "log":  # istioctl: "POD.NAMESPACE:" then Envoy's answer
        try:
            answer = set_levels(url, args.level, args.reset)
        except LevelError as exc:
            raise CliError(str(exc)) from None
        sys.stdout.write(f"{proxy_label(state, url)}:\n{answer}")
    elif args.kind == "bootstrap":
        found = dump.bootstrap(url)
        _print(output, ([["Envoy Version:", dump.envoy_version(found)]], 1), found)
    elif output == "short":
        _print(output, table(args, url), None)
    else:
        _print(output, None, selected(args, url))
    return 0
