"""HTTPRoute filters in the translation, as istiod converts them (conversion.go
`createMirrorFilter`, `createRedirectFilter`, `createRewriteFilter`, `createCorsFilter`):
the Envoy route each one gives, and what is refused, named by file, kind and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.gatewayapi import cors
from tests.mesh.test_gateway_api import V1, V2, http_route, mesh_routes, overlay, refusal, to


def test_request_mirror_filters_become_the_routes_mirror_policies(tmp_path: Path) -> None:
    def mirror(service: str, **share: Any) -> dict[str, Any]:
        return {"type": "RequestMirror", "requestMirror": {"backendRef": to(service), **share}}

    rule = {
        "filters": [
            mirror("backend-v2"),
            mirror("backend-v2", percent=20),
            mirror("backend-v1", fraction={"numerator": 1, "denominator": 8}),
            mirror("backend-v1", fraction={"numerator": 3}),  # of 100
            mirror("backend-v2", percent=0),  # no copy at all
        ],
        "backendRefs": [to("backend-v1")],
    }
    (route,) = mesh_routes(overlay(tmp_path / "o", patches=[http_route("backend", [rule])]))
    assert route["route"]["cluster"] == V1
    got = [
        (p["cluster"], p["runtime_fraction"]["default_value"])
        for p in route["route"]["request_mirror_policies"]
    ]
    assert got == [
        (V2, {"numerator": 100, "denominator": "HUNDRED"}),
        (V2, {"numerator": 200_000, "denominator": "MILLION"}),
        (V1, {"numerator": 125_000, "denominator": "MILLION"}),
        (V1, {"numerator": 30_000, "denominator": "MILLION"}),
    ]
    assert all(p["trace_sampled"] is False for p in route["route"]["request_mirror_policies"])


def path(kind: str, value: str) -> dict[str, str]:
    field = kind[0].lower() + kind[1:]
    return {"type": kind, field: value}


def prefix(value: str) -> list[dict[str, Any]]:
    return [{"path": {"type": "PathPrefix", "value": value}}]


def filtered(tmp_path: Path, path_prefix: str, filt: dict[str, Any]) -> dict[str, Any]:
    """The Envoy route of a backend rule on PATH_PREFIX to backend-v1 with filter FILT."""
    rule = {"matches": prefix(path_prefix), "filters": [filt], "backendRefs": [to("backend-v1")]}
    (route, *_) = mesh_routes(overlay(tmp_path / "o", patches=[http_route("backend", [rule])]))
    return route


@pytest.mark.parametrize(
    ("redirect", "expected"),
    [
        # the CRD's default code is 302; no port: the request's (the listener's 5000)
        ({}, {"response_code": "FOUND", "port_redirect": 5000}),
        (
            {"hostname": "b.example", "statusCode": 301, "port": 8443},
            {"host_redirect": "b.example", "response_code": "MOVED_PERMANENTLY",
             "port_redirect": 8443},
        ),
        # a scheme without a port: the scheme's default port, so none is written
        ({"scheme": "https"}, {"scheme_redirect": "https", "response_code": "FOUND"}),
        (
            {"path": path("ReplaceFullPath", "/api/tasks"), "statusCode": 308},
            {"path_redirect": "/api/tasks", "response_code": "PERMANENT_REDIRECT",
             "port_redirect": 5000},
        ),
        (
            {"path": path("ReplacePrefixMatch", "/api")},
            {"prefix_rewrite": "/api", "response_code": "FOUND", "port_redirect": 5000},
        ),
    ],
)  # fmt: skip
def test_request_redirect_answers_without_the_backends(
    tmp_path: Path, redirect: dict[str, Any], expected: dict[str, Any]
) -> None:
    route = filtered(tmp_path, "/old", {"type": "RequestRedirect", "requestRedirect": redirect})
    assert route["match"]["path_separated_prefix"] == "/old"
    assert route["redirect"] == expected
    assert "route" not in route and "direct_response" not in route


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        # to "/": the matched prefix removed, one "/" kept (a plain prefix_rewrite gives "//x")
        ({"path": path("ReplacePrefixMatch", "/")},
         {"regex_rewrite": {"pattern": {"regex": "^/old(/?)(.*)"}, "substitution": "/\\2"}}),
        ({"path": path("ReplacePrefixMatch", "/api/")}, {"prefix_rewrite": "/api"}),
        ({"path": path("ReplaceFullPath", "/api/tasks")},
         {"regex_rewrite": {"pattern": {"regex": "/.*"}, "substitution": "/api/tasks"}}),
        ({"hostname": "backend.internal"}, {"host_rewrite_literal": "backend.internal"}),
        ({}, {}),  # nothing to change: istiod drops the filter
    ],
)  # fmt: skip
def test_url_rewrite_changes_the_request_sent_to_the_backend(
    tmp_path: Path, rewrite: dict[str, Any], expected: dict[str, Any]
) -> None:
    action = filtered(tmp_path, "/old/", {"type": "URLRewrite", "urlRewrite": rewrite})["route"]
    assert action["cluster"] == V1
    keys = ("regex_rewrite", "prefix_rewrite", "host_rewrite_literal")
    assert {k: action[k] for k in keys if k in action} == expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://tasks.example", {"exact": "https://tasks.example"}),
        ("https://tasks.example:*", {"prefix": "https://tasks.example:"}),
        ("https://*.example", {"regex": r"^https://.*\.example$"}),
        ("*", {"regex": cors.ANY_ORIGIN}),
        ("", None),
    ],
)
def test_cors_origins_as_istiod_matches_them(origin: str, expected: Any) -> None:
    assert cors.origin_match(origin) == expected


def test_the_cors_filter_is_the_routes_cors_policy(tmp_path: Path) -> None:
    rule = {
        "filters": [
            {
                "type": "CORS",
                "cors": {
                    "allowOrigins": ["https://tasks.example", "http://localhost:*"],
                    "allowMethods": ["GET", "POST"],
                    "allowHeaders": ["x-canary"],
                    "allowCredentials": True,
                },
            }
        ],
        "backendRefs": [to("backend-v1")],
    }
    (route, *_) = mesh_routes(overlay(tmp_path / "o", patches=[http_route("backend", [rule])]))
    policy = route["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert policy["allow_origin_string_match"] == [
        {"exact": "https://tasks.example"},
        {"prefix": "http://localhost:"},
    ]
    assert policy["allow_methods"] == "GET,POST" and policy["allow_headers"] == "x-canary"
    assert policy["allow_credentials"] is True
    assert policy["max_age"] == "5"  # the CRD's default
    assert policy["forward_not_matching_preflights"] is False  # istiod: IGNORE


REFUSALS = [
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "backendRefs": [
                                to(
                                    "backend-v1",
                                    filters=[
                                        {
                                            "type": "RequestMirror",
                                            "requestMirror": {"backendRef": to("backend-v2")},
                                        }
                                    ],
                                )
                            ]
                        }
                    ],
                )
            ]
        },
        "spec.rules[0].backendRefs[0].filters[0] (type RequestMirror) is not supported by the "
        "local mesh (RequestHeaderModifier and ResponseHeaderModifier only)",
    ),
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "filters": [
                                {
                                    "type": "RequestMirror",
                                    "requestMirror": {"backendRef": to("backend-v3")},
                                }
                            ],
                            "backendRefs": [to("backend-v1")],
                        }
                    ],
                )
            ]
        },
        "spec.rules[0].filters[0].requestMirror.backendRef.name 'backend-v3' names no Service",
    ),
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "filters": [
                                {"type": "RequestRedirect", "requestRedirect": {"statusCode": 305}}
                            ],
                        }
                    ],
                )
            ]
        },
        "spec.rules[0].filters[0].requestRedirect.statusCode must be one of 301, 302, 303, "
        "307, 308",
    ),
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "matches": [{"path": {"type": "Exact", "value": "/old"}}],
                            "filters": [
                                {
                                    "type": "URLRewrite",
                                    "urlRewrite": {"path": path("ReplacePrefixMatch", "/api")},
                                }
                            ],
                            "backendRefs": [to("backend-v1")],
                        }
                    ],
                )
            ]
        },
        "spec.rules[0].filters[0].urlRewrite.path ReplacePrefixMatch needs every match of the "
        "rule to be a PathPrefix",
    ),
    (
        {
            "patches": [
                http_route(
                    "backend",
                    [
                        {
                            "filters": [
                                {"type": "URLRewrite", "urlRewrite": {"hostname": "a"}},
                                {"type": "RequestRedirect", "requestRedirect": {}},
                            ],
                            "backendRefs": [to("backend-v1")],
                        }
                    ],
                )
            ]
        },
        "spec.rules[0].filters[1] (RequestRedirect and URLRewrite) cannot be combined",
    ),
]


@pytest.mark.parametrize(("change", "message"), REFUSALS)
def test_filters_the_local_mesh_cannot_run_are_refused_by_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    assert message in refusal(tmp_path, change)
