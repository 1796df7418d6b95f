"""VirtualService `corsPolicy` -> the CORS filter's per-route policy, as istiod's route.go
`TranslateCORSPolicy` writes it; and a real Envoy answering a preflight with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.errors import TranslationError
from mesh.translate.cors import CORS_FILTER, CORS_POLICY_TYPE
from tests.mesh.support import (
    BACKEND_LISTENER,
    GATEWAY_LISTENER,
    hcm,
    local_config,
    overlay,
    routes,
    vs_patch,
)
from tests.support.mesh import new_mesh

V1 = {"host": "backend-service", "subset": "v1"}
FRONTEND = {"destination": {"host": "frontend-service", "port": {"number": 8000}}}
ENABLED = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def policy_of(tmp_path: Path, cors: dict[str, Any]) -> dict[str, Any]:
    rule = {"route": [{"destination": V1}], "corsPolicy": cors}
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [rule])])
    (route,) = routes(local_config(tree), BACKEND_LISTENER)
    return route["typed_per_filter_config"][CORS_FILTER]


def test_every_connection_manager_has_istios_filters_in_istios_order(tmp_path: Path) -> None:
    config = local_config(overlay(tmp_path / "o"))
    for listener in (BACKEND_LISTENER, GATEWAY_LISTENER):
        names = [f["name"] for f in hcm(config, listener)["http_filters"]]
        assert names == ["envoy.filters.http.fault", CORS_FILTER, "envoy.filters.http.router"]


def test_a_cors_policy_is_the_routes_filter_config(tmp_path: Path) -> None:
    got = policy_of(
        tmp_path,
        {
            "allowOrigins": [
                {"exact": "https://tasks.example"},
                {"prefix": "http://localhost:"},
                {"regex": r"https://.*\.example"},
            ],
            "allowMethods": ["GET", "POST"],
            "allowHeaders": ["x-canary", "content-type"],
            "exposeHeaders": ["x-backend-version"],
            "maxAge": "24h",
            "allowCredentials": True,
        },
    )
    assert got == {
        "@type": CORS_POLICY_TYPE,
        "forward_not_matching_preflights": True,
        "allow_origin_string_match": [
            {"exact": "https://tasks.example"},
            {"prefix": "http://localhost:"},
            {"safe_regex": {"regex": r"https://.*\.example"}},
        ],
        "filter_enabled": ENABLED,
        "allow_credentials": True,
        "allow_headers": "x-canary,content-type",
        "allow_methods": "GET,POST",
        "expose_headers": "x-backend-version",
        "max_age": "86400",
    }


def test_the_deprecated_allow_origin_and_ignored_preflights(tmp_path: Path) -> None:
    got = policy_of(
        tmp_path, {"allowOrigin": ["https://a.example"], "unmatchedPreflights": "IGNORE"}
    )
    assert got == {
        "@type": CORS_POLICY_TYPE,
        "forward_not_matching_preflights": False,
        "allow_origin_string_match": [{"exact": "https://a.example"}],
        "filter_enabled": ENABLED,
    }


def test_fault_and_cors_share_the_routes_filter_configs(tmp_path: Path) -> None:
    rule = {
        "route": [{"destination": V1}],
        "corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}]},
        "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 1}}},
    }
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [rule])])
    (route,) = routes(local_config(tree), BACKEND_LISTENER)
    assert sorted(route["typed_per_filter_config"]) == [CORS_FILTER, "envoy.filters.http.fault"]


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"allowOrigins": [{}]}, "allowOrigins[0] must set one of exact, prefix, regex"),
        ({"allowOrigins": [{"regex": "(?=x)"}]}, "allowOrigins[0].regex uses look-around"),
        ({"unmatchedPreflights": "DROP"}, "unmatchedPreflights must be UNSPECIFIED"),
        ({"maxAge": "soon"}, "maxAge is not a duration"),
        ({"allowOrigns": []}, "allowOrigns is not supported"),
    ],
)  # fmt: skip
def test_bad_cors_policies_are_refused_naming_the_field(
    tmp_path: Path, cors: dict[str, Any], message: str
) -> None:
    with pytest.raises(TranslationError) as err:
        policy_of(tmp_path, cors)
    assert f"VirtualService/backend: spec.http[0].corsPolicy.{message}" in str(err.value)


@pytest.mark.integration
def test_envoy_answers_preflights_for_allowed_origins_only(tmp_path: Path) -> None:
    rule = {
        "name": "frontend",
        "route": [FRONTEND],
        "corsPolicy": {
            "allowOrigins": [{"exact": "https://tasks.example"}],
            "allowMethods": ["GET", "POST"],
            "allowHeaders": ["x-canary"],
            "maxAge": "10m",
            "unmatchedPreflights": "IGNORE",
        },
    }
    tree = overlay(tmp_path / "o", patches=[vs_patch("frontend", [rule])])
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "x-canary",
    }
    with new_mesh(tree, tmp_path / "state") as mesh, httpx.Client(timeout=10.0) as client:
        url = f"{mesh.gateway_url}/api/tasks"
        r = client.options(url, headers={"origin": "https://tasks.example", **preflight})
        # Envoy answers the preflight itself: the frontend has no OPTIONS route
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == "https://tasks.example"
        assert r.headers["access-control-allow-methods"] == "GET,POST"
        assert r.headers["access-control-allow-headers"] == "x-canary"
        assert r.headers["access-control-max-age"] == "600"
        # another origin: no CORS headers (and, with IGNORE, no trip upstream either)
        r = client.options(url, headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in r.headers
        # a simple request from the allowed origin gets its answer with the header
        r = client.get(url, headers={"origin": "https://tasks.example"})
        assert r.status_code == 200 and r.json()["version"] == "v1"
        assert r.headers["access-control-allow-origin"] == "https://tasks.example"
        r = client.get(url, headers={"origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
