"""A Deployment and the Services that select it (IST0116, IST0137), and the user ID its
containers run as (IST0144).

As istioctl's ``ServiceAssociationAnalyzer`` (``pkg/config/analysis/analyzers/deployment/
services.go``) and ``ApplicationUIDAnalyzer`` (``deployment/pod.go``) decide:

- IST0116: two Services of the Deployment's namespace select its pods with the same port
  number but different protocols (``protocol``: TCP, UDP, SCTP; TCP when unset). Istio
  keys a listener on the port, so one of them loses.
- IST0137: two Services select its pods with the same targetPort (the port when unset)
  but different ports. Istio names the inbound cluster after the pod port, so the two
  Services' routes meet in one place and one of them is ignored.
  Both only for Deployments in the mesh (``injection.in_mesh``), not a waypoint's.
- IST0144: a Deployment or Pod (not Istio's own) that runs as UID 1337, the sidecar's:
  iptables lets that user's traffic bypass the proxy, so the app is outside the mesh.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload, selects
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, dicts
from mesh.check.rules.injection import PROXY_CONTAINER, in_mesh, namespaces

PROXY_UID = 1337  # deployment/pod.go UserID
NOT_APP_CONTAINERS = (PROXY_CONTAINER, "istio-operator")
MANAGED = "gateway.istio.io/managed"
WAYPOINT = "istio.io-mesh-controller"  # constants.ManagedGatewayMeshControllerLabel


Selecting = list[tuple[str, list[dict[str, Any]]]]  # (namespace/name, ports) per Service


def check(index: Index) -> Iterator[Finding]:
    namespace_objects = namespaces(index)
    for workload in index.workloads:
        kind = workload.resource.kind
        if kind in ("Deployment", "Pod") and not _istio_control_plane(workload.resource):
            yield from _application_uid(workload)
        if kind != "Deployment" or workload.resource.labels.get(MANAGED) == WAYPOINT:
            continue
        if in_mesh(workload, namespace_objects):
            services = _selecting(index, workload)
            yield from _protocols(workload.resource, services)
            yield from _target_ports(workload.resource, services)


def _selecting(index: Index, workload: Workload) -> Selecting:
    """(namespace/name, ports) of each Service of WORKLOAD's namespace whose non-empty
    selector matches its pod template."""
    found = []
    for service in index.of_kind("Service", istio=False):
        selector = index.service_selector(service)
        if (
            selector
            and service.namespace == workload.namespace
            and selects(selector, workload.labels)
        ):
            found.append((f"{service.namespace}/{service.name}", dicts(service.spec.get("ports"))))
    return sorted(found, key=lambda item: item[0])


def _protocols(res: Resource, services: Selecting) -> Iterator[Finding]:
    by_port: dict[int, dict[str, list[str]]] = {}
    for name, ports in services:
        for port in ports:
            number = port.get("port")
            if isinstance(number, int):
                protocol = str(port.get("protocol") or "TCP")
                by_port.setdefault(number, {}).setdefault(protocol, []).append(name)
    for number, protocols in sorted(by_port.items()):
        if len(protocols) > 1:
            names = sorted(n for group in protocols.values() for n in group)
            shown = ", ".join(f"{p} ({', '.join(n)})" for p, n in sorted(protocols.items()))
            yield res.finding(
                "IST0116",
                Severity.WARNING,
                f"Services {', '.join(names)} select these pods on port {number} with different "
                f"protocols: {shown}; Istio keeps one listener per port, so one of them is lost",
            )


def _target_ports(res: Resource, services: Selecting) -> Iterator[Finding]:
    by_target: dict[str, dict[int, str]] = {}
    for name, ports in services:
        for port in ports:
            number = port.get("port")
            if not isinstance(number, int):
                continue
            target = str(port.get("targetPort") or "")
            if target in ("", "0"):
                target = str(number)
            by_target.setdefault(target, {})[number] = name
    for target, ports in sorted(by_target.items()):
        if len(ports) > 1:
            names = sorted(set(ports.values()))
            numbers = ", ".join(str(p) for p in sorted(ports))
            yield res.finding(
                "IST0137",
                Severity.WARNING,
                f"Services {', '.join(names)} send targetPort {target} of these pods from "
                f"different ports ({numbers}): Istio builds one inbound cluster per pod port, "
                "so two Services selecting the same workload must use the same port for it",
            )


def _istio_control_plane(res: Resource) -> bool:
    """util.IsIstioControlPlane: labelled ``istio`` (any value) or ``release: istio``."""
    return "istio" in res.labels or res.labels.get("release") == "istio"


def _application_uid(workload: Workload) -> Iterator[Finding]:
    spec = workload.pod_spec
    where = "spec" if workload.resource.kind == "Pod" else "spec.template.spec"
    places = [(f"{where}.securityContext", as_dict(spec.get("securityContext")))]
    for i, container in enumerate(dicts(spec.get("containers"))):
        if container.get("name") not in NOT_APP_CONTAINERS:
            context = as_dict(container.get("securityContext"))
            places.append((f"{where}.containers[{i}].securityContext", context))
    for path, context in places:
        uid = context.get("runAsUser")
        if isinstance(uid, int) and not isinstance(uid, bool) and uid == PROXY_UID:
            yield workload.resource.finding(
                "IST0144",
                Severity.WARNING,
                f"{path}.runAsUser: UID {PROXY_UID} is reserved for the sidecar proxy; "
                "traffic of that user bypasses the proxy, so this app would be outside the "
                "mesh (pick another UID)",
            )
