"""VirtualService `redirect` and `rewrite` -> Envoy's redirect action and the route
action's rewrites, as istiod's route.go writes them (`ApplyRedirect`) and its validation
checks them (`validateHTTPRedirect`, `validateHTTPRewrite`); and a real Envoy answering
a redirect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.errors import TranslationError
from tests.mesh.support import (
    BACKEND_LISTENER,
    GATEWAY_LISTENER,
    local_config,
    overlay,
    routes,
    vs_patch,
)
from tests.support.mesh import new_mesh

FRONTEND = {"destination": {"host": "frontend-service", "port": {"number": 8000}}}


def gateway_rules(*first: dict[str, Any]) -> dict[str, Any]:
    """The frontend VirtualService of k8s/ with FIRST rules before its catch-all."""
    return vs_patch("frontend", [*first, {"name": "frontend", "route": [FRONTEND]}])


def redirect_of(tmp_path: Path, redirect: dict[str, Any], **rule: Any) -> dict[str, Any]:
    """The Envoy route of a backend rule that answers REDIRECT."""
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [{"redirect": redirect, **rule}])])
    (route,) = routes(local_config(tree), BACKEND_LISTENER)
    assert "route" not in route and "direct_response" not in route  # nothing goes upstream
    return route["redirect"]


def code(name: str, **action: Any) -> dict[str, Any]:
    return {**action, "response_code": name}


MOVED = "MOVED_PERMANENTLY"
GOOD = [
    ({"uri": "/v2/tasks"}, code(MOVED, path_redirect="/v2/tasks")),
    ({"authority": "a.example", "redirectCode": 302}, code("FOUND", host_redirect="a.example")),
    ({"uri": "/x", "redirectCode": 303}, code("SEE_OTHER", path_redirect="/x")),
    ({"uri": "/x", "redirectCode": 307}, code("TEMPORARY_REDIRECT", path_redirect="/x")),
    ({"uri": "/x", "redirectCode": 308}, code("PERMANENT_REDIRECT", path_redirect="/x")),
    # no :443 for https, no :80 for http, any other port written
    ({"scheme": "https", "port": 443}, code(MOVED, scheme_redirect="https")),
    ({"port": 80}, code(MOVED)),
    ({"port": 8443}, code(MOVED, port_redirect=8443)),
    # derivePort: the listener's own port (the backend's 5000), or the scheme's default
    ({"derivePort": "FROM_REQUEST_PORT"}, code(MOVED, port_redirect=5000)),
    (
        {"scheme": "https", "derivePort": "FROM_PROTOCOL_DEFAULT"},
        code(MOVED, scheme_redirect="https"),
    ),
]


@pytest.mark.parametrize(("redirect", "expected"), GOOD)
def test_redirects_are_envoys_redirect_action(
    tmp_path: Path, redirect: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert redirect_of(tmp_path, redirect) == expected


def test_prefix_rewrite_keeps_the_rest_of_the_path(tmp_path: Path) -> None:
    got = redirect_of(tmp_path, {"prefixRewrite": "/v2"}, match=[{"uri": {"prefix": "/old"}}])
    assert got == {"prefix_rewrite": "/v2", "response_code": "MOVED_PERMANENTLY"}


BAD = [
    ({"redirect": {"uri": "/a"}, "route": [{"destination": {"host": "backend-service"}}]},
     "redirect cannot be combined with route"),
    ({"redirect": {"uri": "/a"}, "fault": {"abort": {"httpStatus": 500}}},
     "redirect cannot be combined with fault"),
    ({"redirect": {"uri": "/a"}, "directResponse": {"status": 200}},
     "redirect cannot be combined with directResponse"),
    ({"redirect": {}}, "redirect must give uri, prefixRewrite, authority, scheme or port"),
    ({"redirect": {"uri": "/a", "prefixRewrite": "/b"}},
     "redirect.prefixRewrite cannot be combined with uri"),
    ({"redirect": {"prefixRewrite": "/b"}, "match": [{"uri": {"exact": "/a"}}]},
     "redirect.prefixRewrite needs every uri match to be a prefix match"),
    ({"redirect": {"uri": "/a", "redirectCode": 200}}, "redirect.redirectCode must be between 300"),
    ({"redirect": {"uri": "/a", "redirectCode": 305}},
     "redirect.redirectCode 305 is not a redirect Envoy sends (301, 302, 303, 307, 308)"),
    ({"redirect": {"scheme": "ftp"}}, 'redirect.scheme must be "http" or "https"'),
    ({"redirect": {"port": 0}}, "redirect.port must be between 1 and 65535"),
    ({"redirect": {"port": 81, "derivePort": "FROM_REQUEST_PORT"}},
     "redirect.derivePort cannot be combined with port"),
    ({"redirect": {"derivePort": "SOMEWHERE"}},
     "redirect.derivePort must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT"),
    ({"redirect": {"uri": "/a", "queryParams": {}}}, "redirect.queryParams is not supported"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "message"), BAD)
def test_bad_redirects_are_refused_naming_the_field(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [rule])])
    with pytest.raises(TranslationError) as err:
        local_config(tree)
    assert f"VirtualService/backend: spec.http[0].{message}" in str(err.value)


V1 = {"host": "backend-service", "subset": "v1"}


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        ({"uri": "/v2"}, {"prefix_rewrite": "/v2"}),
        ({"uriRegexRewrite": {"match": "^/api/(.*)$", "rewrite": "/v2/\\1"}},
         {"regex_rewrite": {"pattern": {"regex": "^/api/(.*)$"}, "substitution": "/v2/\\1"}}),
        ({"authority": "backend.internal"}, {"host_rewrite_literal": "backend.internal"}),
    ],
)  # fmt: skip
def test_rewrites_change_what_goes_upstream(
    tmp_path: Path, rewrite: dict[str, Any], expected: dict[str, Any]
) -> None:
    rule = {"route": [{"destination": V1}], "rewrite": rewrite}
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [rule])])
    (route,) = routes(local_config(tree), BACKEND_LISTENER)
    keys = ("prefix_rewrite", "regex_rewrite", "host_rewrite_literal")
    assert {k: route["route"][k] for k in keys if k in route["route"]} == expected


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        ({}, "rewrite must give uri, uriRegexRewrite or authority"),
        ({"uri": "/a", "uriRegexRewrite": {"match": "/", "rewrite": "/"}},
         "rewrite.uriRegexRewrite cannot be combined with uri"),
        ({"uriRegexRewrite": {"match": "/a"}},
         "rewrite.uriRegexRewrite needs both match and rewrite"),
        ({"uriRegexRewrite": {"match": "(?=a)", "rewrite": "/"}},
         "rewrite.uriRegexRewrite.match uses look-around"),
    ],
)  # fmt: skip
def test_bad_rewrites_are_refused_naming_the_field(
    tmp_path: Path, rewrite: dict[str, Any], message: str
) -> None:
    rule = {"route": [{"destination": V1}], "rewrite": rewrite}
    tree = overlay(tmp_path / "o", patches=[vs_patch("backend", [rule])])
    with pytest.raises(TranslationError) as err:
        local_config(tree)
    assert f"VirtualService/backend: spec.http[0].{message}" in str(err.value)


def test_the_gateway_route_redirects_and_the_others_are_unchanged(tmp_path: Path) -> None:
    moved = {"name": "moved", "match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/"}}
    tree = overlay(tmp_path / "o", patches=[gateway_rules(moved)])
    got = {r.get("name"): r for r in routes(local_config(tree), GATEWAY_LISTENER)}
    assert got["moved"]["redirect"] == {"path_redirect": "/", "response_code": "MOVED_PERMANENTLY"}
    assert got["frontend"]["route"]["cluster"].endswith(
        "frontend-service.default.svc.cluster.local"
    )


@pytest.mark.integration
def test_envoy_answers_the_redirect_and_serves_the_rest(tmp_path: Path) -> None:
    moved = {
        "name": "moved",
        "match": [{"uri": {"prefix": "/old/"}}],
        "redirect": {"prefixRewrite": "/api/", "redirectCode": 302},
    }
    tree = overlay(tmp_path / "o", patches=[gateway_rules(moved)])
    with new_mesh(tree, tmp_path / "state") as mesh, httpx.Client(timeout=10.0) as client:
        r = client.get(f"{mesh.gateway_url}/old/tasks?done=false")
        assert r.status_code == 302, r.text
        # Envoy keeps the request's host and query, and swaps the matched prefix
        assert r.headers["location"] == f"{mesh.gateway_url}/api/tasks?done=false"
        followed = client.get(r.headers["location"])
        assert followed.status_code == 200 and followed.json()["version"] == "v1"
        assert client.get(f"{mesh.gateway_url}/api/tasks").status_code == 200
