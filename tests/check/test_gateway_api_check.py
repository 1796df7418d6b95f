"""`mesh check` on the Gateway API: the kept schema (its release and source), schema
findings (TM401), and the cross-checks (IST0101 for parents, backends and certificates,
IST0161 for an invalid certificate, TM402 for a class istiod does not serve), on
k8s/variants/gateway-api and changes to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.check import Finding, check_tree
from mesh.check.gatewayapi import check_schema, schema_file
from mesh.check.gatewayapi_crd import main
from mesh.check.loader import Resource
from mesh.cli import main as mesh_main
from tests.mesh.support import VARIANTS, overlay, pem_files, tls_secret

GATEWAY_API = VARIANTS / "gateway-api"
ROUTE = "gateway.networking.k8s.io/v1"


def test_kept_schema_names_the_release_istio_supports() -> None:
    data = schema_file()
    assert data["version"] == "v1.5.1" and data["istio"] == "1.30"
    assert data["source"].endswith("kubernetes-sigs/gateway-api/tree/v1.5.1/config/crd/standard")
    assert len(data["commit"]) == 40
    assert {f"{ROUTE} HTTPRoute", f"{ROUTE} Gateway", f"{ROUTE} GatewayClass"} <= set(data["kinds"])


def test_version_names_the_gateway_api_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_main(["check", "--version"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("Gateway API")]
    assert "v1.5.1" in line and "Istio 1.30" in line


def test_generator_keeps_every_served_version_strict(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "gateway.networking.k8s.io",
            "names": {"kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"a": {"type": "string"}}}
                            },
                        }
                    },
                },
                {"name": "v0", "served": False, "schema": {"openAPIV3Schema": {}}},
            ],
        },
    }
    (tmp_path / "thing.yaml").write_text(yaml.safe_dump(crd))
    out = tmp_path / "schema.json"
    args = [str(tmp_path / "thing.yaml"), "--version", "v9", "--commit", "c" * 40]
    assert main([*args, "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert list(data["kinds"]) == ["gateway.networking.k8s.io/v1 Thing"]
    assert (
        data["kinds"]["gateway.networking.k8s.io/v1 Thing"]["properties"]["spec"][
            "additionalProperties"
        ]
        is False
    )
    assert data["version"] == "v9" and data["source"].endswith("/tree/v9/config/crd/standard")


def _messages(doc: dict[str, Any]) -> list[str]:
    findings = list(check_schema(Resource(doc=doc, file="t.yaml", namespace="default")))
    assert {f.code for f in findings} <= {"TM401"}
    return [f.message for f in findings]


def test_schema_refuses_unknown_fields_and_missing_required_ones() -> None:
    route = {
        "apiVersion": ROUTE,
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"rules": [{"retry": {"attempts": 2}, "backendRefs": [{"name": "s", "port": 80}]}]},
    }
    assert _messages(route) == ["spec.rules[0]: unknown field 'retry'"]
    # YAML's `on:` and `null:` keys are a bool and None, not strings: named, not a traceback
    odd = yaml.safe_load("retry: {}\non: 1\nnull: 2\nbackendRefs: []\n")
    route["spec"]["rules"] = [odd]
    assert _messages(route) == ["spec.rules[0]: unknown field 'retry', None, True"]
    gateway = {"apiVersion": ROUTE, "kind": "Gateway", "metadata": {"name": "g"}, "spec": {}}
    assert any("'gatewayClassName' is a required property" in m for m in _messages(gateway))
    assert _messages({**gateway, "apiVersion": "gateway.networking.k8s.io/v1alpha9"})[0].startswith(
        "unknown Gateway API apiVersion/kind"
    )


def _lines(findings: list[Finding]) -> list[str]:
    return [f"{f.code} {f.kind}/{f.name}: {f.message}" for f in findings]


@pytest.mark.parametrize("variant", ["gateway-api", "gateway-api-weighted"])
def test_the_variants_check_clean(variant: str) -> None:
    """Also: the gateway's identity (taskmesh-gateway-istio, istiod's ServiceAccount for
    the Gateway) in the frontend's AuthorizationPolicy is known (no TM104)."""
    assert _lines(check_tree(VARIANTS / variant)) == []


def route_patch(rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": ROUTE,
        "kind": "HTTPRoute",
        "metadata": {"name": "backend"},
        "spec": {**spec, "rules": rules},
    }


CASES = [
    (  # what `mesh up` refuses is TM201 in `mesh check`, as for the Istio APIs
        [
            route_patch(
                [
                    {
                        "filters": [
                            {
                                "type": "ExtensionRef",
                                "extensionRef": {"group": "example.com", "kind": "K", "name": "x"},
                            }
                        ],
                        "backendRefs": [{"name": "backend-v1", "port": 5000}],
                    }
                ]
            )
        ],
        "TM201 HTTPRoute/backend: spec.rules[0].filters[0] (type ExtensionRef) is not supported by "
        "the local mesh",
    ),
    (
        [route_patch([{"backendRefs": [{"name": "backend-v3", "port": 5000}]}])],
        "IST0101 HTTPRoute/backend: rules[0].backendRefs[0]: Service default/backend-v3 not found",
    ),
    (
        [route_patch([{"backendRefs": [{"name": "backend-v1", "port": 80}]}])],
        "IST0101 HTTPRoute/backend: rules[0].backendRefs[0].port: 80 is not a port of Service "
        "default/backend-v1",
    ),
    (
        [route_patch([], parentRefs=[{"name": "no-such-gateway"}])],
        "IST0101 HTTPRoute/backend: parentRefs[0]: Gateway default/no-such-gateway not found",
    ),
    (
        [route_patch([], parentRefs=[{"name": "taskmesh-gateway", "sectionName": "https"}])],
        "IST0101 HTTPRoute/backend: parentRefs[0]: no listener of Gateway "
        "default/taskmesh-gateway has name 'https'",
    ),
    (
        [
            route_patch([], parentRefs=[{"name": "taskmesh-gateway"}], hostnames=["a.example"]),
            {
                "apiVersion": ROUTE,
                "kind": "Gateway",
                "metadata": {"name": "taskmesh-gateway"},
                "spec": {
                    "listeners": [
                        {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "b.example"}
                    ]
                },
            },
        ],
        "IST0101 HTTPRoute/backend: parentRefs[0]: none of the hostnames ['a.example'] is served",
    ),
    (
        [route_patch([], parentRefs=[{"group": "", "kind": "Service", "name": "backend"}])],
        "IST0101 HTTPRoute/backend: parentRefs[0]: Service default/backend not found",
    ),
    (
        [
            {
                "apiVersion": ROUTE,
                "kind": "Gateway",
                "metadata": {"name": "taskmesh-gateway"},
                "spec": {"gatewayClassName": "nginx"},
            }
        ],
        "TM402 Gateway/taskmesh-gateway: gatewayClassName 'nginx' is neither one istiod serves",
    ),
]


def https_gateway(secret: str) -> dict[str, Any]:
    return {
        "apiVersion": ROUTE,
        "kind": "Gateway",
        "metadata": {"name": "taskmesh-gateway"},
        "spec": {
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {
                    "name": "https",
                    "port": 443,
                    "protocol": "HTTPS",
                    "tls": {"certificateRefs": [{"name": secret}]},
                },
            ]
        },
    }


def test_an_https_listeners_certificate_must_be_a_valid_secret(tmp_path: Path) -> None:
    """conversion.go buildSecretReference: ResolvedRefs False, no server for the listener."""
    secrets = [tls_secret("good", pem_files()), tls_secret("half", pem_files(keys=("tls.crt",)))]

    def lines(secret: str, where: str) -> list[str]:
        tree = overlay(tmp_path / where, patches=[https_gateway(secret)], extra=secrets,
                       base=GATEWAY_API)  # fmt: skip
        return [x for x in _lines(check_tree(tree)) if x.startswith("IST")]

    assert lines("good", "a") == []
    [missing] = lines("nowhere", "b")
    assert missing.startswith(
        "IST0101 Gateway/taskmesh-gateway: spec.listeners[1].tls.certificateRefs[0]: "
        "Referenced Secret not found: default/nowhere"
    )
    [invalid] = lines("half", "c")
    assert invalid.startswith("IST0161 Gateway/taskmesh-gateway: spec.listeners[1].tls")
    assert "Secret/half has no certificate" in invalid


@pytest.mark.parametrize(("patches", "expected"), CASES)
def test_cross_checks(tmp_path: Path, patches: list[dict[str, Any]], expected: str) -> None:
    lines = _lines(check_tree(overlay(tmp_path / "o", patches=patches, base=GATEWAY_API)))
    assert any(line.startswith(expected) for line in lines), lines


def test_a_virtual_service_may_name_a_gateway_api_gateway(tmp_path: Path) -> None:
    """No false "gateway not found" (IST0101) for a Gateway of gateway.networking.k8s.io."""
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "edge"},
        "spec": {
            "hosts": ["*"],
            "gateways": ["taskmesh-gateway"],
            "http": [{"route": [{"destination": {"host": "frontend-service"}}]}],
        },
    }
    lines = _lines(check_tree(overlay(tmp_path / "o", extra=[vs], base=GATEWAY_API)))
    assert not [line for line in lines if "not found" in line], lines
