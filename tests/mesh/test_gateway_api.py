"""The Gateway API's semantics in the translation (mesh.gatewayapi): route precedence,
matches, weights, header filters, timeouts, and refusals named by file, kind and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.errors import TranslationError
from mesh.manifests import load
from mesh.translate.placement import default_service_ports
from tests.mesh.support import BACKEND_LISTENER, GATEWAY_LISTENER, K8S, VARIANTS, local_config
from tests.mesh.support import overlay as _overlay

GATEWAY_API = VARIANTS / "gateway-api"
V1 = "outbound|5000||backend-v1.default.svc.cluster.local"
V2 = "outbound|5000||backend-v2.default.svc.cluster.local"


def overlay(where: Path, **kw: Any) -> Path:
    return _overlay(where, base=GATEWAY_API, **kw)


def http_route(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    service = {"group": "", "kind": "Service", "name": "backend-service", "port": 5000}
    spec.setdefault("parentRefs", [service])
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {**spec, "rules": rules},
    }


def to(service: str, **extra: Any) -> dict[str, Any]:
    return {"name": service, "port": 5000, **extra}


def mesh_routes(directory: Path) -> list[dict[str, Any]]:
    config = local_config(directory)
    for entry in config["static_resources"]["listeners"]:
        if entry["name"] == BACKEND_LISTENER:
            hcm = entry["filter_chains"][0]["filters"][0]["typed_config"]
            return hcm["route_config"]["virtual_hosts"][0]["routes"]
    raise AssertionError("no backend listener")


def test_the_variant_routes_canary_to_v2_before_the_catch_all() -> None:
    canary, stable = mesh_routes(GATEWAY_API)
    assert canary["name"] == "canary" and stable["name"] == "stable"  # written the other way
    assert canary["match"]["headers"] == [{"name": "x-canary", "string_match": {"exact": "true"}}]
    assert canary["route"]["cluster"] == V2 and stable["route"]["cluster"] == V1
    assert canary["route"]["timeout"] == "5s"
    assert stable["route"]["cluster_not_found_response_code"] == "INTERNAL_SERVER_ERROR"


def test_precedence_across_rules_and_routes_follows_the_gateway_api(tmp_path: Path) -> None:
    first = http_route(
        "a-first",
        [
            {
                "name": "regex",
                "matches": [{"path": {"type": "RegularExpression", "value": "/api/.*"}}],
                "backendRefs": [to("backend-v1")],
            },
            {
                "name": "prefix",
                "matches": [{"path": {"value": "/api"}}],
                "backendRefs": [to("backend-v1")],
            },
            {
                "name": "two-headers",
                "matches": [
                    {
                        "path": {"value": "/api"},
                        "headers": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
                    }
                ],
                "backendRefs": [to("backend-v2")],
            },
        ],
    )
    second = http_route(
        "b-second",
        [
            {
                "name": "method",
                "matches": [{"path": {"value": "/api"}, "method": "POST"}],
                "backendRefs": [to("backend-v2")],
            },
            {
                "name": "exact",
                "matches": [{"path": {"type": "Exact", "value": "/api/tasks"}}],
                "backendRefs": [to("backend-v2")],
            },
            {
                "name": "longer",
                "matches": [{"path": {"value": "/api/tasks/"}}],
                "backendRefs": [to("backend-v2")],
            },
        ],
    )
    where = overlay(tmp_path / "o", extra=[second, first])
    names = [r["name"] for r in mesh_routes(where)]
    # one table for every route of backend-service (HTTPRoute backend too, by name first)
    assert names == [
        "exact",
        "longer",
        "method",
        "two-headers",
        "prefix",
        "canary",
        "stable",
        "regex",  # istiod ranks any prefix, "/" too, above a regex (getURIRank)
    ]


def test_matches_filters_weights_and_timeouts(tmp_path: Path) -> None:
    rule = {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/api/"},
                "method": "GET",
                "queryParams": [{"name": "v", "value": "2"}],
                "headers": [{"name": "X-Env", "type": "RegularExpression", "value": "dev|qa"}],
            }
        ],
        "filters": [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {
                    "set": [{"name": "X-Mesh", "value": "gw"}],
                    "add": [{"name": "x-add", "value": "1"}],
                    "remove": ["x-drop"],
                },
            }
        ],
        "backendRefs": [
            to("backend-v1", weight=3),
            to(
                "backend-v2",
                weight=1,
                filters=[
                    {
                        "type": "ResponseHeaderModifier",
                        "responseHeaderModifier": {"set": [{"name": "x-v", "value": "2"}]},
                    }
                ],
            ),
            to("backend-v2", weight=0),
        ],
        "timeouts": {"request": "1500ms"},
    }
    patch = http_route("backend", [rule])
    (route, *_) = mesh_routes(overlay(tmp_path / "o", patches=[patch]))
    assert route["name"] == "default.backend.0"
    match = route["match"]
    assert match["path_separated_prefix"] == "/api" and "prefix" not in match
    assert match["headers"] == [
        {"name": ":method", "string_match": {"exact": "GET"}},
        {"name": "x-env", "string_match": {"safe_regex": {"regex": "dev|qa"}}},
    ]
    assert match["query_parameters"] == [{"name": "v", "string_match": {"exact": "2"}}]
    action = route["route"]
    assert action["timeout"] == "1.5s"
    assert [(c["name"], c["weight"]) for c in action["weighted_clusters"]["clusters"]] == [
        (V1, 3),
        (V2, 1),
    ]
    assert action["weighted_clusters"]["clusters"][1]["response_headers_to_add"] == [
        {"header": {"key": "x-v", "value": "2"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    ]
    added = {(h["header"]["key"], h["append_action"]) for h in route["request_headers_to_add"]}
    assert added == {
        ("x-mesh", "OVERWRITE_IF_EXISTS_OR_ADD"),
        ("x-add", "APPEND_IF_EXISTS_OR_ADD"),
    }
    assert route["request_headers_to_remove"] == ["x-drop"]


def test_a_rule_without_backends_answers_500(tmp_path: Path) -> None:
    patch = http_route("backend", [{"backendRefs": [to("backend-v1", weight=0)]}])
    (route,) = mesh_routes(overlay(tmp_path / "o", patches=[patch]))
    assert route["direct_response"] == {"status": 500}


def test_the_gateway_route_refuses_admin_and_sends_the_rest_to_the_frontend() -> None:
    config = local_config(GATEWAY_API)
    for entry in config["static_resources"]["listeners"]:
        if entry["name"] == GATEWAY_LISTENER:
            hcm = entry["filter_chains"][0]["filters"][0]["typed_config"]
            (vhost,) = hcm["route_config"]["virtual_hosts"]
    assert vhost["domains"] == ["*"]
    admin, frontend = vhost["routes"]
    assert admin["match"]["path_separated_prefix"] == "/admin"
    assert admin["direct_response"] == {"status": 500}
    assert (
        frontend["route"]["cluster"] == "outbound|8000||frontend-service.default.svc.cluster.local"
    )


def test_per_version_services_listen_on_the_next_free_numbers() -> None:
    ports = default_service_ports(load(GATEWAY_API))
    assert ports[("backend-service", 5000)] == 5000
    assert sorted([ports[("backend-v1", 5000)], ports[("backend-v2", 5000)]]) == [5001, 5002]


REFUSALS = [
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "filters": [
                                {
                                    "type": "ExtensionRef",
                                    "extensionRef": {"group": "x.io", "kind": "K", "name": "k"},
                                }
                            ],
                            "backendRefs": [to("backend-v1")],
                        }
                    ],
                )
            ]
        },
        "HTTPRoute/backend: spec.rules[0].filters[0] (type ExtensionRef) is not supported",
    ),
    (
        {"patches": [http_route("backend", [{"backendRefs": [to("backend-v3")]}])]},
        "HTTPRoute/backend: spec.rules[0].backendRefs[0].name 'backend-v3' names no Service",
    ),
    (
        {"patches": [http_route("backend", [{"backendRefs": [to("backend-v1", port=80)]}])]},
        "spec.rules[0].backendRefs[0].port 80 is not a port of Service/backend-v1",
    ),
    (
        {
            "extra": [
                http_route(
                    "x", [{"backendRefs": [to("backend-v1")]}], parentRefs=[{"name": "nope"}]
                )
            ]
        },
        "HTTPRoute/x: spec.parentRefs[0].name 'nope' names no Gateway",
    ),
    (
        {
            "patches": [
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "Gateway",
                    "metadata": {"name": "taskmesh-gateway"},
                    "spec": {"gatewayClassName": "nginx"},
                }
            ]
        },
        "Gateway/taskmesh-gateway: spec.gatewayClassName 'nginx' is not a class istiod runs",
    ),
    (
        {
            "patches": [
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "Gateway",
                    "metadata": {"name": "taskmesh-gateway"},
                    "spec": {"listeners": [{"name": "tls", "port": 443, "protocol": "TLS"}]},
                }
            ]
        },
        "Gateway/taskmesh-gateway: spec.listeners[0] (protocol TLS) is not supported",
    ),
]


@pytest.mark.parametrize(("change", "message"), REFUSALS)
def test_what_the_local_mesh_cannot_run_is_refused_by_file_kind_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    assert message in refusal(tmp_path, change)


def refusal(tmp_path: Path, change: dict[str, Any]) -> str:
    """Why the local mesh refuses the gateway-api variant with CHANGE, which names the
    file the refused object came from."""
    with pytest.raises(TranslationError) as caught:
        local_config(overlay(tmp_path / "o", **change))
    assert str(caught.value).split(":")[0].endswith(".yaml")
    return str(caught.value)


REPLACED = {  # the Istio routing of k8s/ that the Gateway API variant says its own way
    "istio/gateway.yaml",
    "istio/virtualservice-frontend.yaml",
    "istio/virtualservice-backend.yaml",
    "istio/destinationrule-backend.yaml",
}


def test_the_variant_lists_the_base_files_it_keeps() -> None:
    """It cannot say `resources: [../..]` (kustomize calls that a cycle), so it repeats
    the base's list minus the files it replaces; it must not drift."""
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    kust = yaml.safe_load((GATEWAY_API / "kustomization.yaml").read_text())
    shared = [r for r in kust["resources"] if r.startswith("../../")]
    assert shared == [f"../../{r}" for r in base if r not in REPLACED]


def test_other_gateway_api_kinds_are_reported_as_not_run(tmp_path: Path) -> None:
    grpc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "rpc"},
        "spec": {"parentRefs": [{"name": "taskmesh-gateway"}]},
    }
    manifests = load(overlay(tmp_path / "o", extra=[grpc]))
    ((obj, text),) = [(o, t) for o, t in manifests.not_enforced() if o.kind == "GRPCRoute"]
    assert text.startswith("valid for Istio, not run by the local mesh: its routes get no")
    assert not [o for o, _ in manifests.not_enforced() if o.kind in ("HTTPRoute", "Gateway")]


def test_route_hostnames_bind_to_the_listeners_that_serve_them(tmp_path: Path) -> None:
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "taskmesh-gateway"},
        "spec": {
            "listeners": [
                {"name": "shop", "port": 80, "protocol": "HTTP", "hostname": "shop.example"},
                {"name": "any", "port": 81, "protocol": "HTTP"},
            ]
        },
    }
    route = http_route(
        "hosts",
        [{"backendRefs": [{"name": "frontend-service", "port": 8000}]}],
        parentRefs=[{"name": "taskmesh-gateway"}],
        hostnames=["shop.example", "blog.example"],
    )
    config = local_config(overlay(tmp_path / "o", patches=[gateway], extra=[route]))
    domains = {}
    for entry in config["static_resources"]["listeners"]:
        if entry["name"].startswith("gateway_"):
            hcm = entry["filter_chains"][0]["filters"][0]["typed_config"]
            domains[entry["name"]] = sorted(
                d for v in hcm["route_config"]["virtual_hosts"] for d in v["domains"]
            )
    assert domains == {
        "gateway_80": ["shop.example"],  # the listener's hostname narrows the other route's *
        "gateway_81": ["*", "blog.example", "shop.example"],
    }
