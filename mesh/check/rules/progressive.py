"""Flagger Canaries (flagger.app/v1beta1) against the objects around them, as Flagger's
Istio router and Deployment controller (v1.44.0) would take them.

Flagger's model: the Canary targets one Deployment (``spec.targetRef``) and *generates*
the rest from it: Deployment ``<target>-primary`` (the stable copy that serves), the
Services ``<apex>``, ``<apex>-primary`` and ``<apex>-canary`` (``<apex>`` is
``spec.service.name``, else the target's name), DestinationRules ``<apex>-primary`` and
``<apex>-canary``, and the VirtualService ``<apex>`` (host ``<apex>``, gateway ``mesh``
unless ``spec.service.gateways`` says otherwise) whose weights it moves.

- TM302 the target (or ``autoscalerRef``) is not in the manifests.
- TM303 the target's ``spec.selector.matchLabels`` has none of the labels Flagger selects
  by (``-selector-labels``, default ``app,name,app.kubernetes.io/name``): Flagger refuses it.
- TM304 ``spec.service``'s port: ``targetPort`` (else ``port``) is no container port of
  the target's pods, or the port name is no protocol name and there is no ``appProtocol``
  (Istio then routes the generated Services as TCP: no weights, no HTTP metrics).
- TM305 an object Flagger generates is also in the manifests (Flagger overwrites it, and
  ``kubectl apply`` sets it back), or another mesh VirtualService for the Canary's host
  (two VirtualServices for one host: Istio uses one), or a DestinationRule for that host
  (never applied: Flagger's VirtualService routes to ``<apex>-primary``/``-canary``).
- TM306 traffic cannot reach Flagger's VirtualService: ``spec.service.gateways`` names a
  Gateway that is not there, or ``delegation: true`` and no VirtualService delegates to it.
- TM307 a metric's ``templateRef`` names no MetricTemplate, an alert's ``providerRef`` no
  AlertProvider, or a metric has neither and is not one of Flagger's built-in metrics.

A reference into a namespace that holds no object of the manifests is not judged (it is
installed some other way, as Istio's gateways in istio-system are).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.flagger import GROUP
from mesh.check.index import Index, fqdn
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, as_str, dicts

SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
BUILTIN_METRICS = ("request-success-rate", "request-duration")
TARGET_KINDS = ("Deployment", "DaemonSet")


def check(index: Index) -> Iterator[Finding]:
    namespaces = {r.namespace for r in index.resources}
    for canary in index.of_kind("Canary"):
        if canary.group == GROUP:
            yield from _canary(index, canary, namespaces)


def _find(index: Index, kind: str, name: str, namespace: str) -> Resource | None:
    for res in index.of_kind(kind):
        if res.name == name and res.namespace == namespace:
            return res
    return None


def _names(canary: Resource) -> tuple[str, str, str]:
    target = as_str(as_dict(canary.spec.get("targetRef")).get("name"))
    apex = as_str(as_dict(canary.spec.get("service")).get("name")) or target
    return apex, f"{apex}-primary", f"{apex}-canary"


def _canary(index: Index, canary: Resource, namespaces: set[str]) -> Iterator[Finding]:
    ref = as_dict(canary.spec.get("targetRef"))
    kind, name = as_str(ref.get("kind")) or "Deployment", as_str(ref.get("name"))
    target = _find(index, kind, name, canary.namespace) if name else None
    if name and kind in TARGET_KINDS and target is None:
        yield canary.finding(
            "TM302",
            Severity.ERROR,
            f"spec.targetRef: {kind} {name} not found in namespace {canary.namespace} "
            "(Flagger has nothing to copy into the primary and never starts)",
        )
    scaler = as_dict(canary.spec.get("autoscalerRef"))
    scaler_kind, scaler_name = as_str(scaler.get("kind")), as_str(scaler.get("name"))
    if scaler_name and _find(index, scaler_kind, scaler_name, canary.namespace) is None:
        yield canary.finding(
            "TM302",
            Severity.ERROR,
            f"spec.autoscalerRef: {scaler_kind} {scaler_name} not found in namespace "
            f"{canary.namespace}",
        )
    if target is not None and kind in TARGET_KINDS:
        yield from _target(canary, target)
    yield from _generated(index, canary)
    yield from _reachable(index, canary, namespaces)
    yield from _references(index, canary, namespaces)


# --- the target and its port -------------------------------------------------


def _target(canary: Resource, target: Resource) -> Iterator[Finding]:
    selector = as_dict(as_dict(target.spec.get("selector")).get("matchLabels"))
    if not any(label in selector for label in SELECTOR_LABELS):
        yield canary.finding(
            "TM303",
            Severity.ERROR,
            f"{target.kind} {target.name}: spec.selector.matchLabels has none of "
            f"{', '.join(SELECTOR_LABELS)}, the labels Flagger selects pods by "
            "(it refuses the target)",
        )
    service = as_dict(canary.spec.get("service"))
    wanted = service.get("targetPort", service.get("port"))
    pod = as_dict(as_dict(target.spec.get("template")).get("spec"))
    ports = [p for c in dicts(pod.get("containers")) for p in dicts(c.get("ports"))]
    by_name = {as_str(p.get("name")) for p in ports} - {""}
    by_number = {p.get("containerPort") for p in ports}
    field = "targetPort" if "targetPort" in service else "port"
    if isinstance(wanted, str) and not wanted.isdigit() and wanted not in by_name:
        yield canary.finding(
            "TM304",
            Severity.ERROR,
            f"spec.service.{field}: {target.kind} {target.name} has no container port "
            f"named {wanted!r} (the generated Services would route to nothing)",
        )
    elif isinstance(wanted, int | str) and str(wanted).isdigit() and ports:
        if int(wanted) not in by_number:
            yield canary.finding(
                "TM304",
                Severity.WARNING,
                f"spec.service.{field}: {target.kind} {target.name} declares no container "
                f"port {wanted}",
            )
    port_name = as_str(service.get("portName")) or "http"
    if not service.get("appProtocol") and not _is_protocol_name(port_name):
        yield canary.finding(
            "TM304",
            Severity.WARNING,
            f"spec.service.portName {port_name!r} names no protocol and there is no "
            "appProtocol: Istio treats the generated Services' traffic as TCP "
            "(no HTTP routing or metrics for the analysis)",
        )


def _is_protocol_name(name: str) -> bool:
    protocols = ("http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "redis")
    return any(name == p or name.startswith(f"{p}-") for p in protocols)


# --- what Flagger generates ----------------------------------------------------


def _generated(index: Index, canary: Resource) -> Iterator[Finding]:
    apex, primary, canary_name = _names(canary)
    target = as_str(as_dict(canary.spec.get("targetRef")).get("name"))
    owned = {
        ("Service", apex),
        ("Service", primary),
        ("Service", canary_name),
        ("DestinationRule", primary),
        ("DestinationRule", canary_name),
        ("VirtualService", apex),
        ("Deployment", f"{target}-primary"),
        ("DaemonSet", f"{target}-primary"),
    }
    where = f"Canary {canary.name}"
    for res in index.resources:
        if res.namespace != canary.namespace or (res.kind, res.name) not in owned:
            continue
        routing = res.kind == "VirtualService"
        yield res.finding(
            "TM305",
            Severity.ERROR if routing else Severity.WARNING,
            f"Flagger generates {res.kind} {res.name} for {where} and overwrites it; "
            "applying this manifest again undoes Flagger's "
            + ("weights mid-analysis" if routing else "changes until its next sync")
            + " (leave it out of the manifests)",
        )
    host = fqdn(apex, canary.namespace)
    for vs in index.of_kind("VirtualService", istio=True):
        if (vs.namespace, vs.name) == (canary.namespace, apex):
            continue
        gateways = [as_str(g) for g in as_list(vs.spec.get("gateways"))]
        if gateways and "mesh" not in gateways:
            continue  # bound to gateways only: the sidecars never use it
        hosts = {fqdn(as_str(h), vs.namespace) for h in as_list(vs.spec.get("hosts"))}
        if host in hosts:
            yield vs.finding(
                "TM305",
                Severity.ERROR,
                f"routes host {apex}, as the VirtualService {apex} that Flagger generates for "
                f"{where} does: two VirtualServices for one host in the mesh, and Istio "
                "uses one of them (leave this one out, or let the Canary own the routes)",
            )
    for dr in index.destination_rules_for(host):
        yield dr.finding(
            "TM305",
            Severity.WARNING,
            f"host {apex} of {where}: Flagger's VirtualService routes to {primary} and "
            f"{canary_name}, so this DestinationRule never applies (put its trafficPolicy "
            "in the Canary's spec.service.trafficPolicy)",
        )


# --- traffic reaching Flagger's VirtualService ---------------------------------------


def _reachable(index: Index, canary: Resource, namespaces: set[str]) -> Iterator[Finding]:
    apex, _, _ = _names(canary)
    service = as_dict(canary.spec.get("service"))
    for ref in (as_str(g) for g in as_list(service.get("gateways"))):
        if not ref or ref == "mesh":
            continue
        namespace, _, name = ref.rpartition("/")
        namespace = namespace or canary.namespace
        if namespace not in namespaces:
            continue
        if _find(index, "Gateway", name, namespace) is None:
            yield canary.finding(
                "TM306",
                Severity.ERROR,
                f"spec.service.gateways: gateway {ref!r} not found (Flagger's "
                f"VirtualService {apex} would be bound to nothing there)",
            )
    if service.get("delegation") is True and not _delegates_to(index, apex, canary.namespace):
        yield canary.finding(
            "TM306",
            Severity.ERROR,
            f"spec.service.delegation: no VirtualService delegates to {canary.namespace}/"
            f"{apex} (http[].delegate), so no traffic reaches the canary",
        )


def _delegates_to(index: Index, name: str, namespace: str) -> bool:
    for vs in index.of_kind("VirtualService", istio=True):
        for rule in dicts(vs.spec.get("http")):
            delegate = as_dict(rule.get("delegate"))
            target_ns = as_str(delegate.get("namespace")) or vs.namespace
            if as_str(delegate.get("name")) == name and target_ns == namespace:
                return True
    return False


# --- metric templates and alert providers --------------------------------------------


def _references(index: Index, canary: Resource, namespaces: set[str]) -> Iterator[Finding]:
    analysis = as_dict(canary.spec.get("analysis"))
    for i, metric in enumerate(as_list(analysis.get("metrics"))):
        if not isinstance(metric, dict):
            continue  # the schema check reports it
        where = f"spec.analysis.metrics[{i}]"
        ref = as_dict(metric.get("templateRef"))
        if ref:
            yield from _ref(
                index, canary, namespaces, "MetricTemplate", ref, f"{where}.templateRef"
            )
        elif not metric.get("query") and metric.get("name") not in BUILTIN_METRICS:
            yield canary.finding(
                "TM307",
                Severity.ERROR,
                f"{where}: {metric.get('name')!r} has no templateRef and no query, and "
                f"Flagger's built-in metrics are {' and '.join(BUILTIN_METRICS)}",
            )
    for i, alert in enumerate(as_list(analysis.get("alerts"))):
        ref = as_dict(as_dict(alert).get("providerRef"))
        if ref:
            where = f"spec.analysis.alerts[{i}].providerRef"
            yield from _ref(index, canary, namespaces, "AlertProvider", ref, where)


def _ref(
    index: Index,
    canary: Resource,
    namespaces: set[str],
    kind: str,
    ref: dict[str, Any],
    where: str,
) -> Iterator[Finding]:
    name = as_str(ref.get("name"))
    namespace = as_str(ref.get("namespace")) or canary.namespace
    if not name or namespace not in namespaces:
        return
    found = _find(index, kind, name, namespace)
    if found is None or found.group != GROUP:
        yield canary.finding(
            "TM307",
            Severity.ERROR,
            f"{where}: {kind} {namespace}/{name} not found (Flagger halts the analysis "
            "at every check)",
        )
