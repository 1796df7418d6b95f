"""A Gateway port that its gateway's Service does not expose (IST0162).

As istioctl's ``IngressGatewayPortAnalyzer`` (``pkg/config/analysis/analyzers/gateway/
gateway.go``) decides: a server's ``port.number`` is where the gateway's Envoy listens, so
it must be the ``targetPort`` of a TCP port of a Service that selects the gateway's pods
(or, as the analyzer also accepts, a Service port whose targetPort it maps). Otherwise the
listener exists but nothing outside reaches it: the classic ``number: 8000`` where the
gateway's Service offers 80.

Offline, two differences with reading a cluster:

- Istio's own gateways (``istio: ingressgateway`` / ``egressgateway``) are not in the
  set; their Services are the charts' (``manifests/charts/gateways/istio-ingress`` and
  ``istio-egress`` ``values.yaml``, the default profile scripts/minikube.sh installs):
  15021, 80 → 8080 and 443 → 8443 (the egress gateway: 80 and 443).
- A Service port without ``protocol`` is TCP, as the API server defaults it (the
  analyzer reads the defaulted object).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, selects
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, dicts
from mesh.translate.istio_gateways import istio_gateways


def check(index: Index) -> Iterator[Finding]:
    for gw in index.of_kind("Gateway", istio=True):
        selector = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
        exposed = _exposed_ports(index, selector)
        if exposed is None:  # no pods: IST0101 (rules/routing.py)
            continue
        shown = ",".join(f"{k}={v}" for k, v in selector.items())
        for i, server in enumerate(dicts(gw.spec.get("servers"))):
            number = as_dict(server.get("port")).get("number")
            if isinstance(number, int) and number not in exposed:
                offered = ", ".join(str(p) for p in sorted(exposed)) or "none"
                yield gw.finding(
                    "IST0162",
                    Severity.WARNING,
                    f"servers[{i}].port.number {number}: no Service of the gateway's pods "
                    f"({shown}) exposes it, so nothing outside reaches that listener; the "
                    f"ports it can listen on are {offered} (a Service port or its targetPort)",
                )


def _exposed_ports(index: Index, selector: dict[str, str]) -> set[int] | None:
    """The ports a server may name for the pods of SELECTOR: each TCP Service port's
    targetPort (its port when the targetPort is a name or unset) and the Service port
    itself; None when no pod matches."""
    pods = index.workloads_matching(selector, namespace=None) if selector else []
    if not pods:
        known = istio_gateways(selector)
        return {p for g in known for pair in g.service_ports for p in pair} if known else None
    exposed: set[int] = set()
    for service in index.of_kind("Service", istio=False):
        service_selector = index.service_selector(service)
        if not service_selector or not any(
            p.namespace == service.namespace and selects(service_selector, p.labels) for p in pods
        ):
            continue
        exposed.update(_ports(service))
    return exposed


def _ports(service: Resource) -> set[int]:
    out: set[int] = set()
    for port in dicts(service.spec.get("ports")):
        number = port.get("port")
        if (port.get("protocol") or "TCP") != "TCP" or not isinstance(number, int):
            continue
        target = _int_value(port.get("targetPort"))
        out.add(target or number)
        if target:
            out.add(number)  # the analyzer's portMapping: a Service port naming its target
    return out


def _int_value(value: object) -> int:
    """IntOrString.IntValue(): an int, a string of digits, else 0 (a port name)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else 0
