"""DestinationRule rules: a known host, subsets that select pods, outlier
detection that can actually eject, TLS that verifies the server (IST0106, IST0128,
IST0129, IST0133, IST0173, IST0174, TM103)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload, selects
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_str, dicts
from mesh.check.rules.routing import visible_destination

ENVOY_DEFAULT_MAX_EJECTION_PERCENT = 10


def check(index: Index) -> Iterator[Finding]:
    for dr in index.of_kind("DestinationRule", istio=True):
        yield from _destination_rule(index, dr)
        yield from _unverified_tls(dr)


def _unverified_tls(dr: Resource) -> Iterator[Finding]:
    """IST0128 / IST0129 as analyzers/destinationrule/ca-certificates.go decides: TLS mode
    SIMPLE or MUTUAL with no caCertificates (and not a credentialName on a rule with a
    workloadSelector), in the top trafficPolicy or one of its portLevelSettings (not a
    subset's): Envoy then accepts any certificate the server shows."""
    top = as_dict(dr.spec.get("trafficPolicy"))
    places = [("IST0128", "trafficPolicy.tls", top, "")]
    for i, setting in enumerate(dicts(top.get("portLevelSettings"))):
        number = as_dict(setting.get("port")).get("number")
        where = f"trafficPolicy.portLevelSettings[{i}].tls"
        places.append(("IST0129", where, setting, f" on port {number}"))
    for code, where, policy, port in places:
        tls = as_dict(policy.get("tls"))
        mode = tls.get("mode")
        if mode not in ("SIMPLE", "MUTUAL") or tls.get("caCertificates"):
            continue
        if tls.get("credentialName") and dr.spec.get("workloadSelector") is not None:
            continue
        yield dr.finding(
            code,
            Severity.WARNING,
            f"{where}: mode {mode} without caCertificates: the server certificate of "
            f"{as_str(dr.spec.get('host'))}{port} is not verified, so anyone on the path can "
            "answer in its place; set caCertificates (or credentialName)",
        )


def _policies(dr: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every trafficPolicy in the rule, with where it sits."""
    top = as_dict(dr.spec.get("trafficPolicy"))
    yield "trafficPolicy", top
    for i, port in enumerate(dicts(top.get("portLevelSettings"))):
        yield f"trafficPolicy.portLevelSettings[{i}]", port
    for i, subset in enumerate(dicts(dr.spec.get("subsets"))):
        policy = as_dict(subset.get("trafficPolicy"))
        yield f"subsets[{i}].trafficPolicy", policy
        for j, port in enumerate(dicts(policy.get("portLevelSettings"))):
            yield f"subsets[{i}].trafficPolicy.portLevelSettings[{j}]", port


def _destination_rule(index: Index, dr: Resource) -> Iterator[Finding]:
    host = as_str(dr.spec.get("host"))
    service = index.service(host, dr.namespace) if host else None
    # analyzers/destinationrule/subset.go: the host as VirtualService destinations are
    # looked up (exportTo, wildcard ServiceEntries); unknown: IST0174, no subset check
    target = visible_destination(index, dr, host) if host else None
    if host and target is None:
        yield dr.finding(
            "IST0174",
            Severity.WARNING,
            f"host {host} matches no Service or ServiceEntry visible to namespace "
            f"{dr.namespace} in this set; the rule applies to nothing",
        )
    names: list[str] = []
    for i, subset in enumerate(dicts(dr.spec.get("subsets"))):
        name = str(subset.get("name") or "")
        if not name:
            yield dr.finding("IST0106", Severity.ERROR, f"subsets[{i}] has no name")
        elif name in names:
            yield dr.finding("IST0106", Severity.ERROR, f"subset {name!r} is defined twice")
        names.append(name)
        labels = {str(k): str(v) for k, v in as_dict(subset.get("labels")).items()}
        if target is None:
            continue
        # a ServiceEntry's workloadSelector merged with the subset's labels, matched against
        # every pod (with its node's topology labels), whatever its Service
        wanted = {**_workload_selector(target), **labels}
        if not any(selects(wanted, _augmented(index, w)) for w in index.workloads):
            yield dr.finding(
                "IST0173",
                Severity.ERROR,
                f"subset {name!r} (labels {_labels(labels)}) selects no pod in this set; "
                "requests to it would get 503 UH",
            )
    for where, policy in _policies(dr):
        outlier = policy.get("outlierDetection")
        if isinstance(outlier, dict) and "consecutiveErrors" in outlier:
            yield dr.finding(
                "IST0133",
                Severity.WARNING,
                f"{where}.outlierDetection.consecutiveErrors is deprecated and ignored by "
                "Istio: use consecutive5xxErrors",
            )
        if policy.get("connectionPool") == {}:
            yield dr.finding(
                "IST0106",
                Severity.ERROR,
                f"{where}.connectionPool must have at least one field",
            )
    if service is not None:
        yield from _ejection(index, dr, service)


def _workload_selector(target: Resource) -> dict[str, str]:
    if target.kind != "ServiceEntry":
        return {}
    selector = as_dict(as_dict(target.spec.get("workloadSelector")).get("labels"))
    return {str(k): str(v) for k, v in selector.items()}


# Node labels a pod gets (pilot/pkg/serviceregistry/util/label/label.go AugmentLabels, from the
# locality pilot builds of its node's region, zone and subzone, and the node's name).
TOPOLOGY = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)


def _augmented(index: Index, workload: Workload) -> dict[str, str]:
    node_name = workload.pod_spec.get("nodeName")
    if not isinstance(node_name, str) or not node_name:
        return workload.labels
    labels = dict(workload.labels)
    labels["kubernetes.io/hostname"] = node_name
    for node in index.of_kind("Node", istio=False):
        if node.name == node_name:
            labels.update({k: v for k, v in node.labels.items() if k in TOPOLOGY})
    return labels


def _ejection(index: Index, dr: Resource, service: Resource) -> Iterator[Finding]:
    """Envoy 1.40 ejects a host only while ``100 * ejected / hosts`` stays within
    ``max_ejection_percent`` (default 10): with 2 hosts it needs 50."""
    top = as_dict(as_dict(dr.spec.get("trafficPolicy")).get("outlierDetection"))
    has_top = isinstance(as_dict(dr.spec.get("trafficPolicy")).get("outlierDetection"), dict)
    subsets = dicts(dr.spec.get("subsets"))
    clusters: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
    clusters.append((f"Service {service.name}", {}, top if has_top else None))
    for subset in subsets:
        own = as_dict(subset.get("trafficPolicy")).get("outlierDetection")
        policy = own if isinstance(own, dict) else (top if has_top else None)
        labels = {str(k): str(v) for k, v in as_dict(subset.get("labels")).items()}
        clusters.append((f"subset {subset.get('name')!r}", labels, policy))
    for label, labels, policy in clusters:
        if policy is None:
            continue
        hosts = sum(w.replicas for w in index.pods_of(service, labels))
        if hosts < 2:
            continue  # one host has nowhere to fail over to; nothing to gain
        percent = policy.get("maxEjectionPercent")
        effective = percent if isinstance(percent, int) else ENVOY_DEFAULT_MAX_EJECTION_PERCENT
        needed = math.ceil(100 / hosts)
        if effective < needed:
            unset = "unset, so Envoy's default " if not isinstance(percent, int) else ""
            yield dr.finding(
                "TM103",
                Severity.WARNING,
                f"{label} has {hosts} hosts but maxEjectionPercent is {unset}{effective}: "
                f"Envoy ejects none of them; set maxEjectionPercent to at least {needed}",
            )


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "none"
