"""Services and workloads as Istio needs them: ports named by protocol, pods
labelled app/version, no Service links, references that resolve
(IST0118, TM101, TM102, TM105, TM106, TM107)."""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, dicts

# Istio's protocol names (case-insensitive), from a port's appProtocol or the
# part of its name before the first "-".
PROTOCOLS = {
    "http",
    "http2",
    "https",
    "grpc",
    "grpc-web",
    "tcp",
    "tls",
    "mongo",
    "mysql",
    "redis",
    "udp",
    "http_proxy",
}
# Ports Istio recognises by number alone.
WELL_KNOWN_PORTS = {25, 53, 3306, 27017}
APP_LABELS = ("app", "app.kubernetes.io/name", "service.istio.io/canonical-name")
VERSION_LABELS = ("version", "app.kubernetes.io/version", "service.istio.io/canonical-revision")


# Labels of Services Istio's analyzer leaves alone (analyzers/service/portname.go): its
# own control plane, and Services a gateway controller manages.
GATEWAY_MANAGED = "gateway.istio.io/managed"
MANAGED_BY = {
    "istio.io-gateway-controller",
    "istio.io-mesh-controller",
    "istio.io-eastwest-controller",
}


def _istio_owned(service: Resource) -> bool:
    labels = service.labels
    return (
        "istio" in labels
        or labels.get("release") == "istio"
        or labels.get(GATEWAY_MANAGED) in MANAGED_BY
    )


def check(index: Index) -> Iterator[Finding]:
    for service in index.of_kind("Service", istio=False):
        if service.api_version == "v1" and not _istio_owned(service):
            yield from _service_ports(service)
        selector = index.service_selector(service)
        if selector and not index.workloads_matching(selector, service.namespace):
            yield service.finding(
                "TM106",
                Severity.WARNING,
                f"selector {_labels(selector)} matches no workload in this set; "
                "the Service has no endpoints",
            )
    claims = {(r.namespace, r.name) for r in index.of_kind("PersistentVolumeClaim")}
    for workload in index.workloads:
        yield from _workload(index, workload, claims)


def _protocol_known(port: dict[str, object]) -> bool:
    """pkg/config/kube/conversion.go ConvertProtocol: UDP, appProtocol (else the name) up to
    its first "-", or a well-known port number."""
    if port.get("protocol") == "UDP":
        return True
    app_protocol = port.get("appProtocol")
    name = str(app_protocol if app_protocol else port.get("name") or "")
    if name in ("kubernetes.io/h2c", "kubernetes.io/ws", "kubernetes.io/wss"):
        return True
    if name.lower().startswith("grpc-web"):
        return True
    if name.split("-", 1)[0].lower() in PROTOCOLS:
        return True
    number = port.get("port")
    return isinstance(number, int) and number in WELL_KNOWN_PORTS


def _service_ports(service: Resource) -> Iterator[Finding]:
    external = service.spec.get("type") == "ExternalName"
    for port in dicts(service.spec.get("ports")):
        name = str(port.get("name") or "")
        if _protocol_known(port) and not (external and name == "tcp"):
            continue
        if external:  # IST0150 instead of IST0118
            yield service.finding(
                "IST0150",
                Severity.WARNING,
                f"port {port.get('port')} name {name!r}: an ExternalName Service needs a port "
                "named by a protocol other than tcp (e.g. http, https, tls), or Istio treats "
                "the traffic as opaque TCP",
            )
            continue
        app_protocol = port.get("appProtocol")
        if app_protocol:
            problem = f"appProtocol {app_protocol!r} is not a protocol Istio knows"
        else:
            problem = f"name {name!r}" if name else "no name"
            problem = f"port {port.get('port')} has {problem} and no appProtocol"
        yield service.finding(
            "IST0118",
            Severity.WARNING,
            f"{problem}: Istio falls back to protocol sniffing and HTTP routing rules may "
            "not apply; name it http or http-<suffix> (or set appProtocol: http)",
        )


def _workload(index: Index, w: Workload, claims: set[tuple[str, str]]) -> Iterator[Finding]:
    res = w.resource
    if res.kind == "Pod":
        return
    missing = [
        what
        for what, keys in (("app", APP_LABELS), ("version", VERSION_LABELS))
        if not any(k in w.labels for k in keys)
    ]
    if missing:
        yield res.finding(
            "TM101",
            Severity.WARNING,
            f"pod template has no {' or '.join(missing)} label: Istio telemetry cannot name the "
            "workload, and DestinationRule subsets key on version",
        )
    selector = {
        str(k): str(v)
        for k, v in as_dict(as_dict(res.spec.get("selector")).get("matchLabels")).items()
    }
    if selector and any(w.labels.get(k) != v for k, v in selector.items()):
        yield res.finding(
            "TM107",
            Severity.ERROR,
            f"spec.selector {_labels(selector)} does not match the pod template labels "
            "(the API server rejects this)",
        )
    if w.pod_spec.get("enableServiceLinks") is not False:
        yield res.finding(
            "TM102",
            Severity.WARNING,
            "enableServiceLinks is not false: Kubernetes injects variables such as "
            "BACKEND_SERVICE_PORT=tcp://... into the pod; set enableServiceLinks: false",
        )
    account = w.service_account
    if account != "default" and (w.namespace, account) not in index.service_accounts:
        yield res.finding(
            "TM105",
            Severity.WARNING,
            f"serviceAccountName {account!r} is no ServiceAccount in this set",
        )
    for volume in dicts(w.pod_spec.get("volumes")):
        claim = as_dict(volume.get("persistentVolumeClaim")).get("claimName")
        if claim and (w.namespace, str(claim)) not in claims:
            yield res.finding(
                "TM105",
                Severity.WARNING,
                f"volume {volume.get('name')!r} uses PersistentVolumeClaim {claim!r}, "
                "which is not in this set",
            )


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())
