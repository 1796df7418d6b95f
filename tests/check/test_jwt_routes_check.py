"""Routing on a JWT claim: istioctl's JWTClaimRouteAnalyzer (IST0149,
pkg/config/analysis/analyzers/virtualservice/jwtclaimroute.go), Istio's validation of it
on a mesh VirtualService (IST0106), and the local mesh refusing a claim match it cannot
run (mesh/translate/matches.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.check import check_tree
from mesh.errors import TranslationError
from mesh.translate.matches import is_jwt_claim
from tests.check.test_analyzer_parity import BASE, deployment
from tests.mesh.support import local_config, overlay, vs_patch

FRONTEND = [{"destination": {"host": "frontend-service", "port": {"number": 8000}}}]


def on_claim(key: str = "@request.auth.claims.groups", field: str = "headers",
             **spec: Any) -> dict[str, Any]:  # fmt: skip
    admins = {"name": "admins", "match": [{field: {key: {"exact": "admin"}}}], "route": FRONTEND}
    return vs_patch("frontend", [admins, {"name": "rest", "route": FRONTEND}], **spec)


def request_authentication(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": "jwt", "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels},
                 "jwtRules": [{"issuer": "https://issuer.example.com"}]},
    }  # fmt: skip


def codes(tmp_path: Path, patch: dict[str, Any], *extra: dict[str, Any]) -> list[str]:
    tree = overlay(tmp_path / "t", patches=[patch], extra=list(extra), base=BASE)
    return sorted(f.code for f in check_tree(tree) if f.code.startswith("IST"))


@pytest.mark.parametrize(
    ("key", "claim"),
    [
        ("@request.auth.claims.groups", True),
        ("@request.auth.claims[groups][0]", True),
        ("@Request.Auth.Claims.sub", True),
        ("@request.auth.claims.", False),
        ("@request.auth.claims[]", False),
        ("@request.auth.claimsgroups", False),
        ("x-groups", False),
    ],
)
def test_a_claim_key_is_what_routing_go_parses(key: str, claim: bool) -> None:
    assert is_jwt_claim(key) == claim


def test_a_request_authentication_on_the_gateways_pods_is_needed(tmp_path: Path) -> None:
    assert codes(tmp_path / "none", on_claim()) == ["IST0149"]
    assert codes(tmp_path / "without", on_claim(field="withoutHeaders")) == ["IST0149"]
    root = request_authentication("istio-system", {"istio": "ingressgateway"})
    assert codes(tmp_path / "root", on_claim(), root) == []
    elsewhere = request_authentication("default", {"istio": "ingressgateway"})
    assert codes(tmp_path / "default", on_claim(), elsewhere) == ["IST0149"]
    other = request_authentication("istio-system", {"app": "frontend"})
    assert codes(tmp_path / "other", on_claim(), other) == ["IST0149"]


def test_an_own_gateway_deployment_needs_one_in_its_namespace(tmp_path: Path) -> None:
    own = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
           "metadata": {"name": "taskmesh-gateway"},
           "spec": {"selector": {"istio": None, "app": "edge"}}}  # fmt: skip
    edge = deployment("edge", {"app": "edge"}, namespace="edge")
    edge_service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "edge", "namespace": "edge"},
        "spec": {"selector": {"app": "edge"}, "ports": [{"name": "http", "port": 80}]},
    }  # fmt: skip
    tree = overlay(tmp_path / "t", patches=[on_claim(), own],
                   extra=[edge, edge_service], base=BASE)  # fmt: skip
    assert [f.code for f in check_tree(tree) if f.code.startswith("IST")] == ["IST0149"]
    policy = request_authentication("edge", {"app": "edge"})
    tree = overlay(tmp_path / "u", patches=[on_claim(), own],
                   extra=[edge, edge_service, policy], base=BASE)  # fmt: skip
    assert [f.code for f in check_tree(tree) if f.code.startswith("IST")] == []


def test_claim_routing_for_sidecars_is_invalid(tmp_path: Path) -> None:
    mesh_only = vs_patch(
        "backend",
        [{"match": [{"headers": {"@request.auth.claims.sub": {"exact": "a"}}}],
          "route": [{"destination": {"host": "backend-service", "subset": "v2"}}]}],
    )  # fmt: skip
    found = [f.message for f in check_tree(overlay(tmp_path / "t", patches=[mesh_only],
                                                   base=BASE)) if f.code == "IST0106"]  # fmt: skip
    assert found == [
        "JWT claim based routing (key: @request.auth.claims.sub) is only supported for "
        "gateway, found no gateways: []"
    ]


def test_the_local_mesh_refuses_a_claim_match_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TranslationError) as caught:
        local_config(overlay(tmp_path / "t", patches=[on_claim()]))
    assert (
        "spec.http[0].match[0].headers.@request.auth.claims.groups is not supported by "
        "the local mesh: routing on a JWT claim needs a RequestAuthentication"
    ) in str(caught.value)
