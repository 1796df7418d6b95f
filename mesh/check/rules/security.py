"""AuthorizationPolicy rules (TM104, IST0127).

An ALLOW policy whose principal names a ServiceAccount that no workload runs
as denies everyone silently (403 ``RBAC: access denied``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.gatewayapi import gateway_accounts, gateway_pod_labels
from mesh.check.index import Index, selects
from mesh.check.loader import Resource
from mesh.check.rules._access import as_dict, as_list, dicts

# Accounts that Istio's own install creates: the ingress/egress gateways.
ISTIO_ACCOUNTS = {
    ("istio-system", "istio-ingressgateway-service-account"),
    ("istio-system", "istio-egressgateway-service-account"),
}
ROOT_NAMESPACE = "istio-system"  # MeshConfig rootNamespace's default
PRINCIPAL = re.compile(r"^(?:spiffe://)?[^/]+/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")


def check(index: Index) -> Iterator[Finding]:
    # istiod's pods for the Gateway API Gateways (selecting them is IST0166, gateway_api.py)
    gateway_pods = gateway_pod_labels(index.resources)
    for policy in index.of_kind("AuthorizationPolicy", istio=True):
        yield from _no_matching_workloads(index, policy, gateway_pods)
        for i, rule in enumerate(dicts(policy.spec.get("rules"))):
            for j, source in enumerate(dicts(rule.get("from"))):
                src = as_dict(source.get("source"))
                where = f"rules[{i}].from[{j}].source"
                for field in ("principals", "notPrincipals"):
                    for value in as_list(src.get(field)):
                        yield from _principal(index, policy, f"{where}.{field}", str(value))
                for value in as_list(src.get("serviceAccounts")):
                    ns, _, sa = str(value).rpartition("/")
                    yield from _account(index, policy, f"{where}.serviceAccounts", ns, sa)


def _no_matching_workloads(
    index: Index, policy: Resource, gateway_pods: list[tuple[Resource, dict[str, str]]]
) -> Iterator[Finding]:
    """IST0127 as analyzers/authz/authorizationpolicies.go decides: a root-namespace
    policy's selector is looked up mesh-wide (without one it is mesh-wide, nothing to
    check); a namespace policy without a selector needs a pod in its namespace; with
    one, a pod of its namespace that it selects."""
    raw = policy.spec.get("selector")
    has_selector = isinstance(raw, dict)
    selector = {str(k): str(v) for k, v in as_dict(as_dict(raw).get("matchLabels")).items()}
    shown = ",".join(f"{k}={v}" for k, v in selector.items())
    if policy.namespace == ROOT_NAMESPACE:
        if has_selector and not index.workloads_matching(selector, namespace=None):
            yield policy.finding(
                "IST0127", Severity.WARNING, f"selector {shown} matches no workload in the mesh"
            )
        return
    if not has_selector:
        if not index.workloads_matching({}, policy.namespace):
            yield policy.finding(
                "IST0127",
                Severity.WARNING,
                f"namespace {policy.namespace} has no workload in this set for this "
                "namespace-wide policy",
            )
        return
    if not index.workloads_matching(selector, policy.namespace) and not any(
        gw.namespace == policy.namespace and selects(selector, pod) for gw, pod in gateway_pods
    ):
        yield policy.finding(
            "IST0127", Severity.WARNING, f"selector {shown} matches no workload in this set"
        )


def _principal(index: Index, policy: Resource, where: str, value: str) -> Iterator[Finding]:
    if "*" in value:
        return
    match = PRINCIPAL.match(value)
    if match is None:
        yield policy.finding(
            "TM104",
            Severity.ERROR,
            f"{where}: {value!r} is not a principal of the form "
            "cluster.local/ns/NAMESPACE/sa/SERVICEACCOUNT",
        )
        return
    yield from _account(index, policy, where, match["ns"], match["sa"])


def _account(index: Index, policy: Resource, where: str, ns: str, sa: str) -> Iterator[Finding]:
    ns = ns or policy.namespace
    if (ns, sa) in ISTIO_ACCOUNTS or (ns, sa) in index.service_accounts:
        return
    if (ns, sa) in gateway_accounts(index.resources):  # istiod's, for a Gateway API Gateway
        return
    yield policy.finding(
        "TM104",
        Severity.ERROR,
        f"{where}: ServiceAccount {ns}/{sa} is not in this set, so no workload has that "
        "identity and the rule never matches",
    )
