"""TM108: a workload's env names a Service port that Service does not have.

An app reaches another service through a URL in its env (`BACKEND_URL:
http://backend-service:5000`). A port the Service does not expose gets no answer in a
cluster (its ClusterIP has nothing on that port; the sidecar passes the call through to
nothing) and, locally, `mesh up` leaves such a URL as written, so the app's calls fail
the same way. A host is resolved as a pod's DNS resolves it: `name` in the pod's own
namespace, `name.namespace`, `name.namespace.svc` and the full
`name.namespace.svc.cluster.local`; any other host is outside the set and left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import CLUSTER_DOMAIN, Index, Workload
from mesh.check.rules._access import as_dict, dicts

_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/\s]+@)?"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)(?::(?P<port>\d+))?"
)
#: the port a URL without one means
DEFAULT_PORTS = {"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432}


def service_of(host: str, namespace: str) -> tuple[str, str] | None:
    """(name, namespace) of the Service HOST resolves to from a pod in NAMESPACE, as
    cluster DNS does; None for a host that is no Service name."""
    parts = host.lower().rstrip(".").split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return parts[0], parts[1]
    if ".".join(parts[2:]) == CLUSTER_DOMAIN and len(parts) == 5:
        return parts[0], parts[1]
    return None


def check(index: Index) -> Iterator[Finding]:
    for workload in index.workloads:
        yield from _workload(index, workload)


def _workload(index: Index, w: Workload) -> Iterator[Finding]:
    for container in dicts(w.pod_spec.get("containers")):
        for var in dicts(container.get("env")):
            value = var.get("value")
            if not isinstance(value, str):
                continue  # valueFrom: not known before the pod runs
            for m in _URL.finditer(value):
                yield from _url(index, w, str(var.get("name", "")), m)


def _url(index: Index, w: Workload, var: str, m: re.Match[str]) -> Iterator[Finding]:
    scheme, host = m.group("scheme").lower(), m.group("host")
    port = int(m.group("port")) if m.group("port") else DEFAULT_PORTS.get(scheme)
    found = service_of(host, w.namespace)
    if port is None or found is None:
        return
    name, namespace = found
    service = index.services.get(f"{name}.{namespace}.{CLUSTER_DOMAIN}")
    if service is None:
        return
    ports = [p.get("port") for p in dicts(as_dict(service.spec).get("ports"))]
    if port in ports:
        return
    implied = "" if m.group("port") else f" ({scheme}'s default)"
    listed = ", ".join(str(p) for p in ports) or "none"
    yield w.resource.finding(
        "TM108",
        Severity.WARNING,
        f"env {var}: {m.group(0)} calls port {port}{implied} of Service {name}, which "
        f"has no such port (its ports: {listed}); the call finds nothing listening",
    )
