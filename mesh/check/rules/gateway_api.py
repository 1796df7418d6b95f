"""Gateway API cross-checks: does every HTTPRoute attach, and lead to a Service port?
(IST0101, TM402.)

istiod reports these as status conditions on the HTTPRoute (conversion.go: ``Accepted``
False with ``NoMatchingParent``, ``ResolvedRefs`` False with ``BackendNotFound``), which
``istioctl analyze`` shows as IST0171 only once a cluster has written them; offline the
missing reference is Istio's IST0101 (referenced resource not found), as for a
VirtualService. A route that names a missing backend answers 500.

- parentRefs: a Gateway (the default kind) of the set, and its listener (``sectionName``,
  ``port``, a hostname that meets the route's ``hostnames``); a Service (group ``""``,
  the GAMMA mesh binding) of the set and its port;
- backendRefs: a Service of the set (the default kind), and a port of it (required);
- a Gateway's ``gatewayClassName``: one istiod serves, or a GatewayClass of the set;
- an HTTPS listener's ``tls.certificateRefs``: a Secret of the set (in the Gateway's
  namespace unless the ref names one) with a valid pair; istiod's status says
  ``ResolvedRefs`` False, ``InvalidCertificateRef`` (conversion.go ``buildSecretReference``)
  and programs no server for the listener: IST0101 when it is missing, IST0161 when its
  pair is not valid, as for an Istio Gateway's credentialName;
- a policy (AuthorizationPolicy, RequestAuthentication, Telemetry, WasmPlugin) whose
  ``selector`` picks the pods istiod deploys for such a Gateway: IST0166, as
  analyzers/k8sgateway/workloadselector.go (``SelectorAnalyzer``) reports it; such a
  policy attaches with ``targetRefs`` to the Gateway instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.gatewayapi import GROUP, ISTIO_CLASSES, gateway_pod_labels
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.check.rules._access import as_list, dicts
from mesh.check.rules.gateway_credentials import credential_problem
from mesh.check.rules.routing import hosts_overlap

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute")
POLICY_KINDS = ("AuthorizationPolicy", "RequestAuthentication", "Telemetry", "WasmPlugin")


def check(index: Index) -> Iterator[Finding]:
    gateways = {(g.namespace, g.name): g for g in _of(index, "Gateway")}
    classes = {c.name for c in _of(index, "GatewayClass")}
    for gw in gateways.values():
        cls = gw.spec.get("gatewayClassName")
        if isinstance(cls, str) and cls not in ISTIO_CLASSES and cls not in classes:
            yield gw.finding(
                "TM402",
                Severity.WARNING,
                f"gatewayClassName {cls!r} is neither one istiod serves "
                f"({', '.join(ISTIO_CLASSES)}) nor a GatewayClass in this set: "
                "no Envoy is deployed for it",
            )
    for gw in gateways.values():
        yield from _certificates(index, gw)
    yield from _ineffective_selectors(index)
    for kind in ROUTE_KINDS:
        for route in _of(index, kind):
            for i, ref in enumerate(dicts(route.spec.get("parentRefs"))):
                yield from _parent(index, route, f"parentRefs[{i}]", ref, gateways)
            for i, rule in enumerate(dicts(route.spec.get("rules"))):
                for j, ref in enumerate(dicts(rule.get("backendRefs"))):
                    yield from _backend(index, route, f"rules[{i}].backendRefs[{j}]", ref)


def _of(index: Index, kind: str) -> list[Resource]:
    return [r for r in index.of_kind(kind) if r.group == GROUP]


def _ports(service: Resource) -> list[Any]:
    return [p.get("port") for p in dicts(service.spec.get("ports"))]


def _parent(
    index: Index,
    route: Resource,
    where: str,
    ref: dict[str, Any],
    gateways: dict[tuple[str, str], Resource],
) -> Iterator[Finding]:
    group, kind = ref.get("group", GROUP), ref.get("kind", "Gateway")
    if (group, kind) == ("", "Service"):
        yield from _service_ref(
            index,
            route,
            where,
            ref,
            missing="Accepted False, NoMatchingParent; the route applies to no calls",
        )
        return
    name, namespace = _name(route, ref)
    port = ref.get("port")
    if (group, kind) != (GROUP, "Gateway"):
        return
    gw = gateways.get((namespace, name))
    if gw is None:
        yield route.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: Gateway {namespace}/{name} not found (istiod: Accepted False, "
            "NoMatchingParent; the route serves nothing)",
        )
        return
    listeners = dicts(gw.spec.get("listeners"))
    section = ref.get("sectionName")
    if section is not None:
        listeners = [li for li in listeners if li.get("name") == section]
    if port is not None:
        listeners = [li for li in listeners if li.get("port") == port]
    if not listeners:
        wanted = [
            f"name {section!r}" if section is not None else "",
            f"port {port}" if port is not None else "",
        ]
        shown = ", ".join(
            f"{li.get('name')}:{li.get('port')}" for li in dicts(gw.spec.get("listeners"))
        )
        yield route.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: no listener of Gateway {namespace}/{name} has "
            f"{' and '.join(w for w in wanted if w)} (its listeners: {shown or 'none'})",
        )
        return
    hostnames = [str(h) for h in as_list(route.spec.get("hostnames"))]
    served = [str(li.get("hostname") or "*") for li in listeners]
    if hostnames and not any(hosts_overlap(s, h) for s in served for h in hostnames):
        yield route.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: none of the hostnames {hostnames} is served by a listener of Gateway "
            f"{namespace}/{name} (hostnames {served}; istiod: Accepted False, "
            "NoMatchingListenerHostname)",
        )


def _backend(index: Index, route: Resource, where: str, ref: dict[str, Any]) -> Iterator[Finding]:
    if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
        return
    yield from _service_ref(
        index,
        route,
        where,
        ref,
        missing="ResolvedRefs False, BackendNotFound; requests to it get 500",
        port_required=True,
        port_note="; requests to it get 500",
    )


def _name(route: Resource, ref: dict[str, Any]) -> tuple[str, str]:
    """The name and namespace REF points to (a reference without one is in ROUTE's)."""
    return str(ref.get("name", "")), str(ref.get("namespace") or route.namespace)


def _service_ref(
    index: Index,
    route: Resource,
    where: str,
    ref: dict[str, Any],
    *,
    missing: str,
    port_required: bool = False,
    port_note: str = "",
) -> Iterator[Finding]:
    """A reference to a Service, as a GAMMA parentRef or as a backendRef: the Service must
    exist, and the port, where one is given, must be one of its ports.

    The two kinds of reference are resolved alike; they differ in the status istiod writes
    when the Service is missing (MISSING), whether a port is required (a backendRef's is),
    and what a wrong port does (PORT_NOTE)."""
    name, namespace = _name(route, ref)
    service = index.service(name, namespace)
    if service is None:
        yield route.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}: Service {namespace}/{name} not found (istiod: {missing})",
        )
        return
    port = ref.get("port")
    if port is None:
        if port_required:
            yield route.finding("IST0101", Severity.ERROR, f"{where}.port: required for a Service")
    elif port not in _ports(service):
        yield route.finding(
            "IST0101",
            Severity.ERROR,
            f"{where}.port: {port} is not a port of Service {namespace}/{name} "
            f"(ports {_ports(service)}{port_note})",
        )


def _certificates(index: Index, gw: Resource) -> Iterator[Finding]:
    secrets = {(s.namespace, s.name): s for s in index.of_kind("Secret", istio=False)}
    for i, listener in enumerate(dicts(gw.spec.get("listeners"))):
        tls = listener.get("tls") if isinstance(listener.get("tls"), dict) else {}
        for j, ref in enumerate(dicts(tls.get("certificateRefs"))):
            if (ref.get("group", ""), ref.get("kind", "Secret")) != ("", "Secret"):
                continue  # the CRD's schema and the translation say why
            name, namespace = str(ref.get("name", "")), str(ref.get("namespace", gw.namespace))
            where = f"spec.listeners[{i}].tls.certificateRefs[{j}]"
            secret = secrets.get((namespace, name))
            if secret is None:
                yield gw.finding(
                    "IST0101",
                    Severity.ERROR,
                    f"{where}: Referenced Secret not found: {namespace}/{name} (ResolvedRefs "
                    "False, InvalidCertificateRef: istiod programs no server for the listener)",
                )
                continue
            problem = credential_problem(secrets, secret)
            if problem:
                yield gw.finding(
                    "IST0161",
                    Severity.ERROR,
                    f"{where}: The credential referenced by the Gateway {gw.name} in namespace "
                    f"{namespace} is invalid: {problem}",
                )


def _ineffective_selectors(index: Index) -> Iterator[Finding]:
    pods = gateway_pod_labels(index.resources)
    for kind in POLICY_KINDS:
        for policy in index.of_kind(kind, istio=True):
            selector = policy.spec.get("selector")
            if policy.spec.get("targetRef") is not None or not isinstance(selector, dict):
                continue
            labels = selector.get("matchLabels")
            wanted = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
            for gw, pod in pods:
                if gw.namespace == policy.namespace and all(
                    pod.get(k) == v for k, v in wanted.items()
                ):
                    yield policy.finding(
                        "IST0166",
                        Severity.WARNING,
                        f"selector picks the pods of Gateway {gw.name} (Gateway API), where a "
                        "selector has no effect; attach the policy with targetRefs: [{group: "
                        f"{GROUP}, kind: Gateway, name: {gw.name}}}]",
                    )
