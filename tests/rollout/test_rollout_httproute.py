"""A rollout of a Service routed by a GAMMA HTTPRoute (k8s/variants/gateway-api): the
weights are set on the HTTPRoute's default rule and the VirtualService istiod would
derive follows; the per-Service clusters are the rollout's names; --write edits the
HTTPRoute file's backendRefs only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mesh.cli import CliError
from mesh.errors import TranslationError
from mesh.loop.weights import route_names, route_weights, set_route_weights
from mesh.manifests import HTTPRoute, Manifests, load
from mesh.rollout.metrics import parse_stats, target_name
from mesh.rollout.plan import resolve
from mesh.rollout.write import check_writable, write_weights

REPO = Path(__file__).resolve().parents[2]
SERVICE = "backend-service"
V1 = "outbound|5000||backend-v1.default.svc.cluster.local"
V2 = "outbound|5000||backend-v2.default.svc.cluster.local"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of k8s/ with its gateway-api variant (which reads ../../ files)."""
    shutil.copytree(REPO / "k8s", tmp_path / "k8s", ignore=shutil.ignore_patterns("jobs"))
    return tmp_path / "k8s" / "variants" / "gateway-api"


def derived_backend_routes(manifests: Manifests) -> list[dict]:
    (vs,) = [
        v
        for v in manifests.virtual_services
        if v.name.endswith("backend-service.default.svc.cluster.local")
    ]
    return vs.spec["http"]


def test_the_default_rule_of_the_bound_httproute_is_the_one_a_rollout_owns(tree: Path) -> None:
    manifests = load(tree)
    assert route_weights(manifests, SERVICE) == {"backend-v1": 100}
    assert route_names(manifests, SERVICE) == ["backend-v1", "backend-v2"]
    assert route_names(load(REPO / "k8s"), SERVICE) is None  # a VirtualService: subsets


def test_weights_are_set_on_the_httproute_and_the_derived_route_follows(tree: Path) -> None:
    manifests = load(tree)
    canary_before = derived_backend_routes(manifests)[0]
    set_route_weights(manifests, SERVICE, {"backend-v1": 90, "backend-v2": 10})
    (route,) = [r for r in manifests.of(HTTPRoute) if r.name == "backend"]
    stable = route.spec["rules"][0]
    assert stable["backendRefs"] == [
        {"name": "backend-v1", "port": 5000, "weight": 90},
        {"name": "backend-v2", "port": 5000, "weight": 10},
    ]
    assert stable["timeouts"] == {"request": "5s"}  # the rest of the rule as it was
    http = derived_backend_routes(manifests)
    assert http[0] == canary_before  # the x-canary rule stays first and as it was
    assert [(d["destination"]["host"], d["weight"]) for d in http[-1]["route"]] == [
        ("backend-v1.default.svc.cluster.local", 90),
        ("backend-v2.default.svc.cluster.local", 10),
    ]
    assert http[-1]["timeout"] == "5s"
    assert route_weights(manifests, SERVICE) == {"backend-v1": 90, "backend-v2": 10}


def test_a_promotion_keeps_the_stable_listed_at_zero_and_the_conversion_drops_it(
    tree: Path,
) -> None:
    manifests = load(tree)
    set_route_weights(manifests, SERVICE, {"backend-v1": 0, "backend-v2": 100})
    assert route_weights(manifests, SERVICE) == {"backend-v1": 0, "backend-v2": 100}
    last = derived_backend_routes(manifests)[-1]["route"]
    assert last == [
        {"destination": {"host": "backend-v2.default.svc.cluster.local", "port": {"number": 5000}}}
    ]


def test_bad_weights_and_a_route_without_a_default_rule_are_refused(tree: Path) -> None:
    with pytest.raises(TranslationError, match="sum to 100"):
        set_route_weights(load(tree), SERVICE, {"backend-v1": 90, "backend-v2": 20})
    path = tree / "httproute-backend.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["rules"] = doc["spec"]["rules"][1:]  # only the x-canary rule
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TranslationError, match=r"HTTPRoute/backend: spec\.rules: no default"):
        route_weights(load(tree), SERVICE)


def test_the_stats_of_the_backendref_services_are_named_by_service() -> None:
    assert target_name(V2, SERVICE) == "backend-v2"
    assert (
        target_name("outbound|5000|v2|backend-service.default.svc.cluster.local", SERVICE) == "v2"
    )
    assert target_name("outbound|80|v1|frontend-service.default.svc.cluster.local", SERVICE) is None
    data = {
        "stats": [
            {"name": f"cluster.{V2}.upstream_rq_total", "value": 7},
            {"name": f"cluster.{V1}.upstream_rq_5xx", "value": 2},
            {"name": "cluster.outbound|5000|v2|backend-service.default.svc.cluster.local."
             "upstream_rq_total", "value": 3},
            {"histograms": {"details": [{"name": f"cluster.{V2}.upstream_rq_time",
                                         "totals": [{"lower_bound": 1, "width": 1, "count": 4}]}]}},
        ]
    }  # fmt: skip
    snap = parse_stats(data, SERVICE)
    assert snap["backend-v2"].counters == {"upstream_rq_total": 7}
    assert snap["backend-v2"].samples == 4
    assert snap["backend-v1"].counters == {"upstream_rq_5xx": 2}
    assert snap["v2"].counters == {"upstream_rq_total": 3}


def test_a_target_that_is_no_backendref_is_named_with_what_exists() -> None:
    have = ["backend-v1", "backend-v2"]
    before = {"backend-v1": 100}
    assert resolve(SERVICE, "backend-v2", None, have, before, "backendRef") == "backend-v1"
    with pytest.raises(CliError, match=r"no backendRef 'v2' \(have: backend-v1, backend-v2\)"):
        resolve(SERVICE, "v2", None, have, before, "backendRef")


def test_write_edits_only_the_httproute_backendrefs_and_keeps_comments(tree: Path) -> None:
    path = tree / "httproute-backend.yaml"
    original = path.read_text().replace(
        "      timeouts:\n        request: 5s\n    - name: canary",
        "      # keep this: the stable rule's deadline\n"
        "      timeouts:\n        request: 5s  # trailing\n    - name: canary",
    )
    path.write_text(original)
    assert check_writable(tree, SERVICE) == path
    write_weights(tree, SERVICE, {"backend-v1": 50, "backend-v2": 50})
    text = path.read_text()
    head = original[: original.index("      backendRefs:\n        - name: backend-v1")]
    assert text.startswith(head)  # the header comments and the lines before the route
    tail = original[original.index("      # keep this") :]
    assert text.endswith(tail)  # everything after it, byte for byte
    rules = yaml.safe_load(text)["spec"]["rules"]
    assert rules[0]["backendRefs"] == [
        {"name": "backend-v1", "port": 5000, "weight": 50},
        {"name": "backend-v2", "port": 5000, "weight": 50},
    ]
    assert route_weights(load(tree), SERVICE) == {"backend-v1": 50, "backend-v2": 50}
    write_weights(tree, SERVICE, {"backend-v1": 0, "backend-v2": 100})
    rules = yaml.safe_load(path.read_text())["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "backend-v2", "port": 5000}]
    assert path.read_text().endswith(tail)
