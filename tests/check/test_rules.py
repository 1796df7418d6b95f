"""Every rule of `mesh check`, proven on a broken copy of the app and its fix.

Each fixture is ``fixtures/base`` plus one change: ``broken/`` must produce the
rule's code on the named object, and ``fixed/`` (the same change done right)
must produce no finding at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.check import CODES, Severity, check_tree

FIXTURES = Path(__file__).parent / "fixtures"

# fixture -> (code, severity, kind/name the finding is about)
CASES: dict[str, tuple[str, Severity, str]] = {
    "schema-core": ("TM001", Severity.ERROR, "Deployment/backend-v2"),
    "unknown-kind": ("TM002", Severity.WARNING, "ConfigMap/settings"),
    "kustomization": ("TM003", Severity.ERROR, "Kustomization/broken"),
    "duplicate-object": ("TM004", Severity.ERROR, "ServiceAccount/backend"),
    "schema-istio-enum": ("IST0106", Severity.ERROR, "DestinationRule/backend"),
    "schema-istio-unknown-field": ("IST0106", Severity.ERROR, "VirtualService/backend"),
    "vs-host": ("IST0101", Severity.ERROR, "VirtualService/backend"),
    "vs-host-dotted": ("IST0101", Severity.ERROR, "VirtualService/backend"),
    "vs-subset": ("IST0101", Severity.ERROR, "VirtualService/backend"),
    "vs-port": ("IST0101", Severity.ERROR, "VirtualService/backend"),
    "vs-gateway": ("IST0101", Severity.ERROR, "VirtualService/frontend"),
    "vs-port-required": ("IST0112", Severity.ERROR, "VirtualService/backend"),
    "vs-unreachable": ("IST0130", Severity.WARNING, "VirtualService/backend"),
    "vs-duplicate-match": ("IST0131", Severity.INFO, "VirtualService/backend"),
    "vs-conflicting-hosts": ("IST0109", Severity.ERROR, "VirtualService/backend-beta"),
    "vs-delegate": ("IST0101", Severity.ERROR, "VirtualService/backend"),
    "jwt-claim-route": ("IST0149", Severity.WARNING, "VirtualService/frontend"),
    "gateway-selector": ("IST0101", Severity.ERROR, "Gateway/taskmesh-gateway"),
    "gateway-host": ("IST0132", Severity.WARNING, "VirtualService/frontend"),
    "gateway-conflict": ("IST0145", Severity.ERROR, "Gateway/admin-gateway"),
    "gateway-credential": ("IST0101", Severity.ERROR, "Gateway/taskmesh-gateway"),
    "gateway-credential-invalid": ("IST0161", Severity.ERROR, "Gateway/taskmesh-gateway"),
    "gateway-duplicate-certificate": ("IST0138", Severity.WARNING, "Gateway/shop-gateway"),
    "gateway-port": ("IST0162", Severity.WARNING, "Gateway/taskmesh-gateway"),
    "dr-subset-no-pods": ("IST0173", Severity.ERROR, "DestinationRule/backend"),
    "dr-unknown-host": ("IST0174", Severity.WARNING, "DestinationRule/backend"),
    "dr-consecutive-errors": ("IST0133", Severity.WARNING, "DestinationRule/backend"),
    "dr-max-ejection": ("TM103", Severity.WARNING, "DestinationRule/backend"),
    "service-port-name": ("IST0118", Severity.WARNING, "Service/backend-service"),
    "service-selector": ("TM106", Severity.WARNING, "Service/backend-service"),
    "deployment-labels": ("TM101", Severity.WARNING, "Deployment/frontend"),
    "deployment-selector": ("TM107", Severity.ERROR, "Deployment/frontend"),
    "service-links": ("TM102", Severity.WARNING, "Deployment/frontend"),
    "workload-serviceaccount": ("TM105", Severity.WARNING, "Deployment/frontend"),
    "workload-env-port": ("TM108", Severity.WARNING, "Deployment/frontend"),
    "annotation-misplaced": ("IST0107", Severity.WARNING, "Deployment/backend-v1"),
    "annotation-unknown": ("IST0108", Severity.WARNING, "Deployment/backend-v1"),
    "annotation-deprecated": ("IST0135", Severity.INFO, "Deployment/backend-v1"),
    "authz-principal": ("TM104", Severity.ERROR, "AuthorizationPolicy/backend-allow-frontend"),
    "authz-selector": ("IST0127", Severity.WARNING, "AuthorizationPolicy/backend-allow-frontend"),
    "telemetry-providers": ("IST0157", Severity.WARNING, "Telemetry/access-logs"),
    "telemetry-default-selector": ("IST0160", Severity.ERROR, "Telemetry/tracing"),
    "service-externalname": ("IST0150", Severity.WARNING, "Service/payments"),
    "local-mesh-field": ("TM201", Severity.WARNING, "VirtualService/backend"),
    "local-mesh-kind": ("TM201", Severity.WARNING, "ServiceEntry/external-api"),
    # Flagger: each is fixtures/flagger-base plus one change
    "canary-schema": ("TM301", Severity.ERROR, "Canary/backend"),
    "canary-target": ("TM302", Severity.ERROR, "Canary/backend"),
    "canary-selector": ("TM303", Severity.ERROR, "Canary/backend"),
    "canary-port": ("TM304", Severity.ERROR, "Canary/backend"),
    "canary-generated": ("TM305", Severity.ERROR, "VirtualService/backend"),
    "canary-gateway": ("TM306", Severity.ERROR, "Canary/backend"),
    "canary-metric": ("TM307", Severity.ERROR, "Canary/backend"),
    # Gateway API: fixtures/base plus a Gateway and an HTTPRoute
    "gatewayapi-schema": ("TM401", Severity.ERROR, "HTTPRoute/web"),
    "gatewayapi-class": ("TM402", Severity.WARNING, "Gateway/edge"),
    "gatewayapi-backend": ("IST0101", Severity.ERROR, "HTTPRoute/web"),
    "gatewayapi-selector": ("IST0166", Severity.WARNING, "AuthorizationPolicy/edge-deny-admin"),
    # sidecar injection and what the workloads run (rules/injection.py, rules/deployments.py)
    "namespace-not-injected": ("IST0102", Severity.INFO, "Namespace/default"),
    "namespace-injection-labels": ("IST0123", Severity.WARNING, "Namespace/default"),
    "deployment-port-protocols": ("IST0116", Severity.WARNING, "Deployment/backend-v1"),
    "deployment-target-ports": ("IST0137", Severity.WARNING, "Deployment/backend-v2"),
    "deployment-uid": ("IST0144", Severity.WARNING, "Deployment/frontend"),
    "dr-tls-ca": ("IST0128", Severity.WARNING, "DestinationRule/backend"),
    "dr-tls-ca-port": ("IST0129", Severity.WARNING, "DestinationRule/backend"),
}

# Fixed fixtures whose fix Istio runs but the local mesh does not: only this code remains
# (a DestinationRule's `tls` originates TLS, which `mesh up` does not; TM201 says so).
FIXED_ALSO: dict[str, str] = {
    "dr-tls-ca": "TM201",
    "dr-tls-ca-port": "TM201",
    "jwt-claim-route": "TM201",  # neither RequestAuthentication nor claim routes run locally
}


def test_base_is_clean() -> None:
    assert [f.line() for f in check_tree(FIXTURES / "base")] == []


def test_flagger_base_is_clean() -> None:
    assert [f.line() for f in check_tree(FIXTURES / "flagger-base")] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_fixture_reports_the_rule(case: str) -> None:
    code, severity, obj = CASES[case]
    findings = check_tree(FIXTURES / case / "broken")
    hits = [f for f in findings if f.code == code and f"{f.kind}/{f.name}" == obj]
    assert hits, f"{code} on {obj} expected, got: {[f.line() for f in findings]}"
    assert {f.severity for f in hits} == {severity}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed_fixture_is_clean(case: str) -> None:
    found = check_tree(FIXTURES / case / "fixed")
    assert [f.line() for f in found if f.code != FIXED_ALSO.get(case)] == []
    if case in FIXED_ALSO:  # and the broken one has it too: the fix did not add it
        broken = {f.code for f in check_tree(FIXTURES / case / "broken")}
        assert FIXED_ALSO[case] in broken


def test_every_code_has_a_fixture() -> None:
    covered = {code for code, _, _ in CASES.values()}
    assert sorted(set(CODES) - covered) == []


def test_every_fixture_is_listed() -> None:
    bases = {"base", "flagger-base"}
    on_disk = {p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in bases}
    assert on_disk == set(CASES)


def test_finding_names_file_and_object() -> None:
    findings = check_tree(FIXTURES / "vs-subset" / "broken")
    lines = [f.line() for f in findings if f.code == "IST0101"]
    assert len(lines) == 1
    assert lines[0].startswith(
        "IST0101 error tests/check/fixtures/base/istio.yaml "
        "default/VirtualService/backend: http[0].route[0]: subset 'v3'"
    )


def test_schema_reports_every_error_not_just_the_first() -> None:
    messages = [f.message for f in check_tree(FIXTURES / "schema-core" / "broken")]
    assert any("replicas" in m for m in messages)
    assert any("imagePullPolicyy" in m for m in messages)


def test_istio_unknown_field_is_named() -> None:
    messages = [f.message for f in check_tree(FIXTURES / "schema-istio-unknown-field" / "broken")]
    assert "spec.http[0].route[0].wieght: unknown field" in messages
