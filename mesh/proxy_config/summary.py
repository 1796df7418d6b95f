"""`mesh proxy-config all`: istioctl's full summary (configdump.go PrintFullSummary): the
Envoy version, then the clusters, listeners, routes and secrets tables, each resource
named with its type (`cluster/NAME`, as SetPrintConfigTypeInSummary makes them), then
the endpoints; a blank line between sections, a `------ KIND INFO ------` header before
each with --with-headers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mesh import admin
from mesh.errors import MeshError
from mesh.proxy_config import dump, tabwriter
from mesh.proxy_config.listeners import ListenerFilter, listeners_table
from mesh.proxy_config.secrets import certificates, secret_items, secrets_table
from mesh.proxy_config.writers import (
    ClusterFilter,
    EndpointFilter,
    clusters_table,
    endpoints_table,
    routes_table,
)

NO_SECRETS = "No active or warming secrets found."  # PrintSecretSummary


class NothingFound(MeshError):
    """A kind the Envoy has none of: istioctl's retrieveSorted*Slice error."""


@dataclass(frozen=True)
class Filters:
    """What each table of the summary keeps (PrintFullSummary's four filters)."""

    clusters: ClusterFilter = field(default_factory=ClusterFilter)
    listeners: ListenerFilter = field(default_factory=ListenerFilter)
    route: str = ""  # a route table's name
    endpoints: EndpointFilter = field(default_factory=EndpointFilter)


def full_summary(admin_url: str, filters: Filters | None = None, with_headers: bool = False) -> str:
    """What `istioctl proxy-config all POD` prints for the Envoy of ADMIN_URL."""
    f = filters or Filters()
    data = admin.get_json(f"{admin_url}/config_dump")  # one read for every section
    config = dump.parse(data)
    for kind in ("clusters", "listeners", "routes"):
        if not getattr(config, kind):
            raise NothingFound(f"no {kind} found")
    items = secret_items(certificates(admin_url), dt.datetime.now(dt.UTC))
    version = dump.envoy_version(dump.bootstrap_of(data))
    render = tabwriter.render
    secrets = render(*secrets_table(items, True)) if items else NO_SECRETS + "\n"
    endpoints = endpoints_table(dump.cluster_statuses(admin_url), f.endpoints)
    sections = [
        ("BOOTSTRAP INFO", render([["Envoy Version:", version]], 1)),
        ("CLUSTER INFO", render(*clusters_table(config.clusters, f.clusters, True))),
        ("LISTENER INFO", render(*listeners_table(config.listeners, f.listeners, True))),
        ("ROUTE INFO", render(*routes_table(config.routes, f.route, typed=True))),
        ("SECRET INFO", secrets),
        ("ENDPOINTS INFO", render(*endpoints)),
    ]
    header = "------ {} ------\n\n"
    return "\n".join(
        (header.format(name) if with_headers else "") + text for name, text in sections
    )
