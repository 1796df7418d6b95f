"""VirtualService delegation (mesh/translate/delegation.py), as istiod merges it
(pilot/pkg/model/virtualservice.go MergeHTTPRoutes): the translated routes, the
refusals naming the field, and on real Envoy a canary routed by a delegate and a
changed delegate applied live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mesh.errors import TranslationError
from tests.mesh.support import (
    BACKEND_LISTENER,
    backend_cluster,
    local_config,
    overlay,
    routes,
)
from tests.support.mesh import new_mesh

RETRIES = {"attempts": 1, "perTryTimeout": "1s"}


def root(*http: dict[str, Any]) -> dict[str, Any]:
    """k8s/'s VirtualService backend with these rules instead of its own."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "backend"},
        "spec": {"http": list(http)},
    }


def delegate(name: str = "backend-routes", *http: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"http": list(http), **spec},
    }


def to(subset: str) -> list[dict[str, Any]]:
    return [{"destination": {"host": "backend-service", "subset": subset}}]


CANARY = {
    "name": "canary",
    "match": [{"headers": {"x-canary": {"exact": "true"}}}],
    "route": to("v2"),
}
TASKS = {"name": "tasks", "match": [{"uri": {"prefix": "/api/tasks"}}], "route": to("v1")}
ADMIN = {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}], "route": to("v2")}
API = {
    "name": "api",
    "match": [{"uri": {"prefix": "/api"}}],
    "timeout": "3s",
    "retries": RETRIES,
    "delegate": {"name": "backend-routes"},
}
STABLE = {"name": "stable", "route": to("v1")}


def config(tmp_path: Path, *extra: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return local_config(overlay(tmp_path / "t", patches=[root(*rules)], extra=list(extra)))


def test_the_delegates_rules_take_the_root_rules_place_merged_with_it(tmp_path: Path) -> None:
    found = config(tmp_path, delegate("backend-routes", CANARY, TASKS, ADMIN),
                   rules=[API, STABLE])  # fmt: skip
    table = routes(found, BACKEND_LISTENER)
    assert [r.get("name") for r in table] == ["api-canary", "api-tasks", "stable"]
    canary, tasks, stable = table
    # the root's prefix and the delegate's header, in one match
    assert canary["match"]["prefix"] == "/api"
    assert [h["name"] for h in canary["match"]["headers"]] == ["x-canary"]
    assert canary["route"]["cluster"] == backend_cluster("v2")
    assert tasks["match"]["prefix"] == "/api/tasks"
    # the root's timeout and retries where the delegate's rules set none
    assert canary["route"]["timeout"] == tasks["route"]["timeout"] == "3s"
    assert canary["route"]["retry_policy"]["num_retries"] == 1
    assert stable["route"]["cluster"] == backend_cluster("v1")
    # every route names the root VirtualService, as istiod's merged one
    for r in table:
        assert r["metadata"]["filter_metadata"]["istio"]["config"].endswith(
            "/virtual-service/backend"
        )


def test_a_delegate_rules_own_settings_win_and_names_join(tmp_path: Path) -> None:
    own = {**TASKS, "timeout": "1s", "match": [{"name": "get", "uri": {"exact": "/api/tasks"}}]}
    api = {**API, "match": [{"name": "api", "uri": {"prefix": "/api"}}]}
    found = config(tmp_path, delegate("backend-routes", own), rules=[api, STABLE])
    first = routes(found, BACKEND_LISTENER)[0]
    assert first["name"] == "api-tasks.api-get"  # rule names joined, then the match's
    assert first["match"]["path"] == "/api/tasks"
    assert first["route"]["timeout"] == "1s"


def test_a_delegate_without_root_matches_keeps_its_own(tmp_path: Path) -> None:
    everything = {"name": "all", "delegate": {"name": "backend-routes", "namespace": "default"}}
    found = config(tmp_path, delegate("backend-routes", CANARY, STABLE), rules=[everything])
    table = routes(found, BACKEND_LISTENER)
    assert [r["name"] for r in table] == ["all-canary", "all-stable"]
    assert "prefix" in table[1]["match"] and table[1]["match"]["prefix"] == "/"


@pytest.mark.parametrize(
    ("rules", "extra", "where", "message"),
    [
        ([API, STABLE], [], "VirtualService/backend: spec.http[0].delegate",
         "names no VirtualService without hosts default/backend-routes"),
        ([{**API, "route": to("v1")}, STABLE], [delegate("backend-routes", TASKS)],
         "VirtualService/backend: spec.http[0].route", "must not be set on a rule with delegate"),
        ([API, STABLE], [delegate("backend-routes", {**TASKS, "delegate": {"name": "x"}})],
         "VirtualService/backend-routes: spec.http[0].delegate", "is not allowed"),
        ([API, STABLE], [delegate("backend-routes", TASKS, gateways=["mesh"])],
         "VirtualService/backend-routes: spec.gateways", "must not be set on a delegate"),
        ([{**API, "delegate": {"name": "backend-routes", "namespace": "shop"}}, STABLE],
         [{**delegate("backend-routes", TASKS, exportTo=["."]),
           "metadata": {"name": "backend-routes", "namespace": "shop"}}],
         "VirtualService/backend: spec.http[0].delegate", "not exported to namespace default"),
    ],
)  # fmt: skip
def test_delegation_mistakes_are_refused_naming_the_field(
    tmp_path: Path, rules: list[dict[str, Any]], extra: list[dict[str, Any]], where: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(TranslationError) as caught:
        config(tmp_path, *extra, rules=rules)
    assert where in str(caught.value) and message in str(caught.value)


def test_a_delegate_rule_outside_the_roots_match_is_dropped(tmp_path: Path) -> None:
    """hasConflict: /admin is not under /api, a method other than the root's either."""
    post = {**TASKS, "name": "post", "match": [{"method": {"exact": "POST"}}]}
    get_api = {**API, "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}]}
    found = config(tmp_path, delegate("backend-routes", ADMIN, post, TASKS),
                   rules=[get_api, STABLE])  # fmt: skip
    assert [r["name"] for r in routes(found, BACKEND_LISTENER)] == ["api-tasks", "stable"]


# --- on real Envoy ---------------------------------------------------------------------


@pytest.mark.integration
def test_envoy_routes_through_the_delegate_and_follows_its_change(tmp_path: Path) -> None:
    """The canary split of k8s/ moved into a delegate: x-canary still reaches v2; then
    the delegate's file alone changes (its canary rule now sends to v1), applied live."""
    extra = tmp_path / "t" / "extra.yaml"
    tree = overlay(tmp_path / "t", patches=[root({"name": "all", "delegate": {"name": "routes"}})],
                   extra=[delegate("routes", CANARY, STABLE)])  # fmt: skip
    with new_mesh(tree, tmp_path / "state") as mesh:
        url = mesh.gateway_url + "/api/tasks"

        def version(canary: bool) -> str:
            headers = {"x-canary": "true"} if canary else {}
            response = httpx.get(url, headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            return response.headers["x-backend-version"]

        assert version(canary=True) == "v2"
        assert version(canary=False) == "v1"
        docs = list(yaml.safe_load_all(extra.read_text()))
        docs[0]["spec"]["http"][0]["route"] = to("v1")
        extra.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        outcome = mesh.apply(tree)
        assert outcome["result"] == "applied", outcome
        assert version(canary=True) == "v1"


def test_a_rollout_of_a_delegated_service_says_where_its_default_route_must_be(
    tmp_path: Path,
) -> None:
    from mesh.loop.weights import route_weights
    from mesh.manifests import load

    tree = overlay(tmp_path / "t", patches=[root({"name": "all", "delegate": {"name": "r"}})],
                   extra=[delegate("r", CANARY, STABLE)])  # fmt: skip
    with pytest.raises(TranslationError, match=r"http\[0\] delegates its routes"):
        route_weights(load(tree), "backend-service")
