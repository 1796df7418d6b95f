"""Host names as istiod compares them (pkg/config/host/names.go, model/gateway.go).

A Gateway server's hosts may carry a namespace (``ns/host``: only VirtualServices of ns
bind it); a VirtualService's hosts meet them by intersection, the narrower name of each
overlapping pair; virtual hosts are ordered most specific first.
"""

from __future__ import annotations

from mesh.manifests import Gateway
from mesh.translate.fields import Node


def bare_host(host: str) -> str:
    """A server host without its namespace (``ns/h``, ``./h``, ``*/h`` -> ``h``)."""
    return host.rpartition("/")[2]


def server_hosts(server: Node, gw: Gateway) -> list[str]:
    """The server's hosts as istiod keeps them (model/gateway.go sanitizeServerHostNamespace):
    ``./h`` is ``<gateway ns>/h``, ``*/h`` is ``h``, ``ns/h`` stays (it binds VirtualServices
    of namespace ns only)."""
    hosts = []
    for entry in server.items("hosts"):
        ns, slash, name = entry.str().rpartition("/")
        if slash and (not ns or not name or "/" in ns):
            raise entry.error("must be HOST or NAMESPACE/HOST")
        if ns == "*" and name == "*":
            return ["*"]
        hosts.append(
            f"{gw.namespace}/{name}" if ns == "." else (name if ns == "*" else entry.str())
        )
    if not hosts:
        raise server.at("hosts").error("is required")
    return hosts


def hosts_for_namespace(hosts: list[str], namespace: str) -> list[str]:
    """host.NamesForNamespace: the server hosts a VirtualService of NAMESPACE may bind."""
    out = []
    for host in hosts:
        ns, slash, name = host.partition("/")
        if not slash:
            out.append(host)
        elif ns in (namespace, "*"):
            out.append(name)
    return out


def _subset_of(a: str, b: str) -> bool:
    """host.Name.SubsetOf: every name A matches is matched by B."""
    if a.startswith("*"):
        return b.startswith("*") and len(a) >= len(b) and a[1:].endswith(b[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def intersect_hosts(server_hosts: list[str], vs_hosts: list[str]) -> list[str]:
    """host.Names.Intersection: the names both lists cover, the narrower of each pair
    (server ``*.example.com`` and VirtualService ``a.example.com`` give ``a.example.com``)."""
    out: list[str] = []
    for s in server_hosts:
        for v in vs_hosts:
            narrower = s if _subset_of(s, v) else (v if _subset_of(v, s) else None)
            if narrower is not None and narrower not in out:
                out.append(narrower)
    return out


def more_specific_key(host: str) -> tuple[bool, int, str]:
    """host.MoreSpecific: longest first, alphabetically, wildcards last."""
    return (host.startswith("*"), -len(host), host)
