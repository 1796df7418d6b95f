"""`mesh check` on VirtualService delegation (mesh/check/rules/delegation.py): Istio's
validation (IST0106: pkg/config/validation ValidateVirtualService,
validateHTTPRouteConflict) and a delegate istiod cannot resolve (IST0101: what
pilot/pkg/model/virtualservice_controller.go mergeVirtualServices drops)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh.check import check_tree
from tests.check.test_analyzer_parity import BASE
from tests.mesh.support import overlay
from tests.mesh.test_delegation import CANARY, STABLE, delegate, root, to

ALL = {"name": "all", "delegate": {"name": "routes"}}


def findings(tmp_path: Path, rules: list[dict[str, Any]], *extra: dict[str, Any]) -> list[str]:
    tree = overlay(tmp_path / "t", patches=[root(*rules)], extra=list(extra), base=BASE)
    return [f"{f.code} {f.kind}/{f.name}: {f.message}" for f in check_tree(tree)]


def test_a_resolved_delegate_is_clean(tmp_path: Path) -> None:
    assert findings(tmp_path, [ALL], delegate("routes", CANARY, STABLE)) == []


def test_a_delegate_with_hosts_is_no_delegate(tmp_path: Path) -> None:
    with_hosts = delegate("routes", CANARY, STABLE, hosts=["backend-service"])
    found = findings(tmp_path, [ALL], with_hosts)
    assert any(
        line.startswith("IST0101 VirtualService/backend: http[0].delegate: no VirtualService")
        for line in found
    ), found


def test_a_delegate_of_another_namespace_must_be_exported(tmp_path: Path) -> None:
    fqdn = {"name": "stable", "route": [{"destination": {
        "host": "backend-service.default.svc.cluster.local", "subset": "v1"}}]}  # fmt: skip
    elsewhere = {**delegate("routes", fqdn, exportTo=["."]),
                 "metadata": {"name": "routes", "namespace": "shop"}}  # fmt: skip
    rule = {"name": "all", "delegate": {"name": "routes", "namespace": "shop"}}
    found = findings(tmp_path / "dot", [rule], elsewhere)
    assert [f for f in found if f.startswith("IST0101")] == [
        "IST0101 VirtualService/backend: http[0].delegate: VirtualService shop/routes is not "
        "exported to namespace default (exportTo .); istiod drops this rule"
    ]
    elsewhere["spec"]["exportTo"] = ["default"]
    assert [f for f in findings(tmp_path / "ns", [rule], elsewhere) if "IST0101" in f] == []


def test_istios_validation_of_roots_and_delegates(tmp_path: Path) -> None:
    routed_root = {**ALL, "route": to("v1")}
    nested = {**STABLE, "delegate": {"name": "other"}}
    found = findings(tmp_path, [routed_root], delegate("routes", nested, gateways=["mesh"]))
    assert sorted(f for f in found if f.startswith("IST0106")) == [
        "IST0106 VirtualService/backend: http[0]: a rule with delegate must not set route "
        "(the delegate's rules route)",
        "IST0106 VirtualService/routes: gateways: a delegate VirtualService (one without "
        "hosts) must not set it",
        "IST0106 VirtualService/routes: http[0].delegate: a delegate VirtualService's rule "
        "cannot delegate again",
    ]
