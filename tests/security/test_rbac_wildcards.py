"""AuthorizationPolicy wildcards and templates as istiod generates them (issue 14 item 5).

Sources: pilot/pkg/security/authz/model/generator.go (srcNamespaceGenerator,
srcServiceAccountGenerator, srcPrincipalGenerator, pathGenerator, methodGenerator),
matcher/header.go (HeaderMatcher), matcher/string.go (StringMatcherWithPrefix),
matcher/template.go (PathTemplateMatcher). Taken literally, these values denied locally
what a cluster allows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesh import envoy
from mesh.sidecars.rbac import URI_TEMPLATE, rbac_filters
from tests.security.test_policies import _deployment, _policy, _with


def _rules(tmp_path: Path, source: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    policy = _policy(
        "wild",
        {
            "selector": {"matchLabels": {"app": "backend"}},
            "rules": [{"from": [{"source": source}], "to": [{"operation": operation}]}],
        },
    )
    manifests = _with(tmp_path, policy)
    (allow,) = [
        f
        for f in rbac_filters(manifests, _deployment(manifests, "backend-v1"))
        if "allow" in f["name"]
    ]
    return allow["typed_config"]["rules"]["policies"]["ns[default]-policy[wild]-rule[0]"]


def _first(ids_or_rules: dict[str, Any]) -> list[dict[str, Any]]:
    (key,) = ids_or_rules
    inner = ids_or_rules[key]
    return inner["ids"] if "ids" in inner else inner["rules"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"namespaces": ["prod-*"]}, {"safe_regex": {"regex": ".*/ns/prod-.*/.*"}}),
        ({"namespaces": ["*"]}, {"safe_regex": {"regex": ".*/ns/.*/.*"}}),
        ({"namespaces": ["a.b"]}, {"safe_regex": {"regex": ".*/ns/a\\.b/.*"}}),
        (
            {"principals": ["cluster.local/ns/default/*"]},
            {"prefix": "spiffe://cluster.local/ns/default/"},
        ),
        ({"principals": ["*/sa/frontend"]}, {"safe_regex": {"regex": "spiffe://.*/sa/frontend"}}),
        ({"principals": ["*"]}, {"safe_regex": {"regex": ".+"}}),
        (
            {"serviceAccounts": ["frontend"]},
            {"safe_regex": {"regex": "spiffe://.+/ns/default/(.+/|)sa/frontend(/.+)?"}},
        ),
    ],
)
def test_source_wildcards(tmp_path: Path, source: dict[str, Any], expected: dict[str, Any]) -> None:
    rule = _rules(tmp_path, source, {"methods": ["GET"]})
    (value,) = _first(_first(rule["principals"][0])[0])
    assert value == {"authenticated": {"principal_name": expected}}


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"methods": ["*"]}, {"header": {"name": ":method", "present_match": True}}),
        ({"methods": ["GE*"]}, {"header": {"name": ":method", "string_match": {"prefix": "GE"}}}),
        ({"methods": ["*T"]}, {"header": {"name": ":method", "string_match": {"suffix": "T"}}}),
        (
            {"paths": ["/api/{*}/items/{**}"]},
            {
                "uri_template": {
                    "name": "uri-template",
                    "typed_config": {"@type": URI_TEMPLATE, "path_template": "/api/*/items/**"},
                }
            },
        ),
        ({"paths": ["/api/*"]}, {"url_path": {"path": {"prefix": "/api/"}}}),
    ],
)
def test_operation_wildcards_and_templates(
    tmp_path: Path, operation: dict[str, Any], expected: dict[str, Any]
) -> None:
    rule = _rules(tmp_path, {"namespaces": ["default"]}, operation)
    (value,) = _first(_first(rule["permissions"][0])[0])
    assert value == expected


def test_envoy_accepts_the_generated_filters(tmp_path: Path) -> None:
    """Real Envoy loads the regexes, present matches and the URI template."""
    source = {"namespaces": ["prod-*"], "principals": ["*/sa/x"], "serviceAccounts": ["a/b"]}
    operation = {"methods": ["*", "GE*"], "paths": ["/api/{*}/x/{**}", "/y*"]}
    rule = _rules(tmp_path / "p", source, operation)
    rbac = {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}
    rbac["rules"] = {"action": "ALLOW", "policies": {"p": rule}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager",
        "stat_prefix": "t",
        "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": []}]},
        "http_filters": [
            {"name": "envoy.filters.http.rbac", "typed_config": rbac},
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    listener = {
        "name": "l",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps({"static_resources": {"listeners": [listener]}}))
    envoy.validate(path)
