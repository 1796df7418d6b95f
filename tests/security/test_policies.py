"""PeerAuthentication -> mTLS mode and AuthorizationPolicy -> Envoy RBAC, as Istio maps them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from mesh.manifests import Deployment, Manifests, load
from mesh.sidecars.peer import check_peer_authentications, mtls_mode
from mesh.sidecars.rbac import check_authorization_policies, rbac_filters
from tests.mesh.support import K8S, overlay

FRONTEND = "spiffe://cluster.local/ns/default/sa/frontend"
GATEWAY = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


def _policy(name: str, spec: dict[str, Any], kind: str = "AuthorizationPolicy", **meta: Any):
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": kind,
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def _deployment(manifests: Manifests, name: str) -> Deployment:
    return next(d for d in manifests.deployments if d.name == name)


def _with(tmp_path: Path, *extra: dict[str, Any], patches: list | None = None) -> Manifests:
    return load(overlay(tmp_path / "overlay", patches=patches, extra=list(extra)))


def _without(manifests: Manifests, kind: str) -> Manifests:
    kept = [o for o in manifests.objects if o.kind != kind]
    assert len(kept) < len(manifests.objects)
    return Manifests(manifests.root, kept)


# --------------------------------------------------------------------------- mTLS mode


def test_the_namespace_policy_of_k8s_makes_every_workload_strict() -> None:
    manifests = load(K8S)
    assert {mtls_mode(manifests, d) for d in manifests.deployments} == {"STRICT"}


def test_a_workload_policy_beats_the_namespace_and_unset_inherits(tmp_path: Path) -> None:
    manifests = _with(
        tmp_path,
        _policy(
            "frontend-permissive",
            {"selector": {"matchLabels": {"app": "frontend"}}, "mtls": {"mode": "PERMISSIVE"}},
            kind="PeerAuthentication",
        ),
        _policy(
            "backend-unset",
            {"selector": {"matchLabels": {"version": "v2"}}, "mtls": {"mode": "UNSET"}},
            kind="PeerAuthentication",
        ),
    )
    assert mtls_mode(manifests, _deployment(manifests, "frontend")) == "PERMISSIVE"
    assert mtls_mode(manifests, _deployment(manifests, "backend-v2")) == "STRICT"
    assert mtls_mode(manifests, _deployment(manifests, "backend-v1")) == "STRICT"


def test_without_any_policy_istio_is_permissive(tmp_path: Path) -> None:
    manifests = _without(load(K8S), "PeerAuthentication")
    assert mtls_mode(manifests, _deployment(manifests, "frontend")) == "PERMISSIVE"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"mtls": {"mode": "STRICTLY"}}, "spec.mtls.mode"),
        ({"selector": {"matchLabels": {"app": "backend"}}, "portLevelMtls": {}}, "portLevelMtls"),
    ],
)
def test_bad_peer_authentication_names_the_field(tmp_path: Path, spec: dict, field: str) -> None:
    manifests = _with(tmp_path, _policy("bad", spec, kind="PeerAuthentication"))
    with pytest.raises(TranslationError, match=rf"PeerAuthentication/bad: .*{field}"):
        check_peer_authentications(manifests)


# --------------------------------------------------------------------------- RBAC


def test_backend_policy_allows_the_frontend_identity_on_api_paths_only() -> None:
    manifests = load(K8S)
    (allow,) = rbac_filters(manifests, _deployment(manifests, "backend-v1"))
    rules = allow["typed_config"]["rules"]
    assert rules["action"] == "ALLOW"
    (policy,) = rules["policies"].values()
    (principal,) = policy["principals"]
    ids = principal["and_ids"]["ids"][0]["or_ids"]["ids"]
    assert ids == [{"authenticated": {"principal_name": {"exact": FRONTEND}}}]
    (permission,) = policy["permissions"]
    paths = permission["and_rules"]["rules"][0]["or_rules"]["rules"]
    assert paths == [{"url_path": {"path": {"prefix": "/api/"}}}]


def test_frontend_policy_allows_the_gateway_except_admin() -> None:
    manifests = load(K8S)
    (allow,) = rbac_filters(manifests, _deployment(manifests, "frontend"))
    (policy,) = allow["typed_config"]["rules"]["policies"].values()
    ids = policy["principals"][0]["and_ids"]["ids"][0]["or_ids"]["ids"]
    assert ids == [{"authenticated": {"principal_name": {"exact": GATEWAY}}}]
    negated = policy["permissions"][0]["and_rules"]["rules"][0]["not_rule"]["or_rules"]["rules"]
    assert negated == [
        {"url_path": {"path": {"exact": "/admin"}}},
        {"url_path": {"path": {"prefix": "/admin/"}}},
    ]


def test_deny_comes_before_allow_and_wildcards_follow_istio(tmp_path: Path) -> None:
    deny = _policy(
        "deny-deletes",
        {
            "action": "DENY",
            "rules": [
                {
                    "from": [{"source": {"principals": ["*/sa/load-client"]}}],
                    "to": [{"operation": {"methods": ["DELETE"], "paths": ["*"]}}],
                },
                {"from": [{"source": {"namespaces": ["other"]}}]},
            ],
        },
    )
    manifests = _with(tmp_path, deny)
    first, second = rbac_filters(manifests, _deployment(manifests, "backend-v2"))
    assert [
        first["typed_config"]["rules"]["action"],
        second["typed_config"]["rules"]["action"],
    ] == [
        "DENY",
        "ALLOW",
    ]
    policies = first["typed_config"]["rules"]["policies"]
    assert list(policies) == [
        "ns[default]-policy[deny-deletes]-rule[0]",
        "ns[default]-policy[deny-deletes]-rule[1]",
    ]
    rule0 = policies["ns[default]-policy[deny-deletes]-rule[0]"]
    suffix = rule0["principals"][0]["and_ids"]["ids"][0]["or_ids"]["ids"][0]
    # matcher.StringMatcherWithPrefix: `*x` under the spiffe:// prefix is a regex
    assert suffix == {
        "authenticated": {"principal_name": {"safe_regex": {"regex": "spiffe://.*/sa/load-client"}}}
    }
    paths, methods = rule0["permissions"][0]["and_rules"]["rules"]
    assert methods["or_rules"]["rules"] == [
        {"header": {"name": ":method", "string_match": {"exact": "DELETE"}}}
    ]
    assert paths["or_rules"]["rules"] == [{"url_path": {"path": {"safe_regex": {"regex": ".+"}}}}]
    rule1 = policies["ns[default]-policy[deny-deletes]-rule[1]"]
    assert rule1["permissions"] == [{"any": True}]
    ns = rule1["principals"][0]["and_ids"]["ids"][0]["or_ids"]["ids"][0]
    assert ns == {"authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/other/.*"}}}}


def test_no_policy_means_no_filter_and_an_empty_allow_denies_all(tmp_path: Path) -> None:
    manifests = _with(
        tmp_path,
        _policy("nothing-for-v2", {"selector": {"matchLabels": {"version": "v2"}}}),
    )
    assert rbac_filters(manifests, _deployment(manifests, "backend-v1"))  # k8s's own policy
    (allow,) = [
        f
        for f in rbac_filters(manifests, _deployment(manifests, "backend-v2"))
        if f["typed_config"]["rules"]["action"] == "ALLOW"
    ]
    assert (
        "ns[default]-policy[nothing-for-v2]-rule[0]"
        not in allow["typed_config"]["rules"]["policies"]
    )
    bare = _without(load(K8S), "AuthorizationPolicy")
    assert rbac_filters(bare, _deployment(bare, "backend-v1")) == []


def test_policies_in_another_namespace_do_not_apply(tmp_path: Path) -> None:
    manifests = _with(
        tmp_path, _policy("elsewhere", {"action": "DENY", "rules": [{}]}, namespace="other")
    )
    actions = [
        f["typed_config"]["rules"]["action"]
        for f in rbac_filters(manifests, _deployment(manifests, "frontend"))
    ]
    assert actions == ["ALLOW"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"action": "CUSTOM", "rules": [{}]}, "spec.action"),
        ({"rules": [{"when": [{"key": "request.headers[x]", "values": ["1"]}]}]}, "when"),
        ({"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}, "requestPrincipals"),
        ({"rules": [{"to": [{"operation": {"ports": ["5000"]}}]}]}, "ports"),
        ({"rules": [{"to": [{"operation": {"paths": "/api/*"}}]}]}, "paths"),
        ({"targetRef": {"kind": "Gateway", "name": "x"}}, "targetRef"),
    ],
)
def test_unsupported_fields_are_errors_naming_them(tmp_path: Path, spec: dict, field: str) -> None:
    manifests = _with(tmp_path, _policy("odd", spec))
    with pytest.raises(TranslationError, match=rf"AuthorizationPolicy/odd: .*{field}"):
        check_authorization_policies(manifests)
