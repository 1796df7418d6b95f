"""k8s/variants/progressive: the app as Flagger runs it, kept in step with the base.

What the variant drops (Flagger generates it) and changes (one target Deployment, the
policies' selector), the routing and resilience it moves into the Canary, the metric
templates derived from the dashboard's queries, and the v2 change that starts a rollout.
(`mesh check` and the rendering both ways cover it with every variant:
tests/manifests/test_repo_manifests.py, tests/mesh/test_manifests.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.check import Severity, check_tree
from mesh.check.loader import load_tree

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANT = K8S / "variants" / "progressive"
DASHBOARD = ROOT / "dashboards" / "taskmesh.json"

# Base files the variant leaves out: Flagger generates their objects from the Canary.
DROPPED = [
    "deployments/backend-v2.yaml",
    "services/backend-service.yaml",
    "istio/virtualservice-backend.yaml",
    "istio/destinationrule-backend.yaml",
]
OWN = ["canary-backend.yaml", "metrictemplates.yaml", "loadtester.yaml"]


def objects(directory: Path) -> dict[str, dict[str, Any]]:
    return {f"{r.kind}/{r.name}": r.doc for r in load_tree(directory).resources}


@pytest.fixture(scope="module")
def variant() -> dict[str, dict[str, Any]]:
    return objects(VARIANT)


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return objects(K8S)


def test_resources_are_the_base_less_what_flagger_generates() -> None:
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    kust = yaml.safe_load((VARIANT / "kustomization.yaml").read_text())
    assert kust["resources"] == [f"../../{r}" for r in base if r not in DROPPED] + OWN


def test_no_object_flagger_generates_is_in_the_variant(variant: dict[str, Any]) -> None:
    for key in (
        "Deployment/backend-v1",
        "Deployment/backend-v2",
        "Deployment/backend-primary",
        "Service/backend-service",
        "Service/backend-service-primary",
        "Service/backend-service-canary",
        "VirtualService/backend",
        "VirtualService/backend-service",
        "DestinationRule/backend",
    ):
        assert key not in variant
    hosts = [
        h for k, d in variant.items() if k.startswith("VirtualService/") for h in d["spec"]["hosts"]
    ]
    assert "backend-service" not in hosts


def test_variant_passes_mesh_check_with_no_flagger_finding() -> None:
    findings = check_tree(VARIANT)
    assert [f.line() for f in findings if f.severity is Severity.ERROR] == []
    assert [f.line() for f in findings if f.code.startswith("TM3")] == []


def test_target_is_backend_v1_selected_by_app_only(
    variant: dict[str, Any], base: dict[str, Any]
) -> None:
    canary = variant["Canary/backend"]["spec"]
    assert canary["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"}
    target = variant["Deployment/backend"]
    v1 = base["Deployment/backend-v1"]
    assert target["spec"]["selector"] == {"matchLabels": {"app": "backend"}}
    labels = target["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        **v1["spec"]["template"]["metadata"]["labels"],
        "app.kubernetes.io/component": "backend",
    }
    assert target["spec"]["template"]["spec"] == v1["spec"]["template"]["spec"]
    assert target["spec"]["replicas"] == v1["spec"]["replicas"]


def test_policies_select_primary_and_canary_pods(variant: dict[str, Any]) -> None:
    """Flagger labels the primary's pods app=backend-primary: the backend's policies
    select a label that it copies unchanged."""
    pods = variant["Deployment/backend"]["spec"]["template"]["metadata"]["labels"]
    primary = {**pods, "app": "backend-primary"}
    for name in ("backend-allow-frontend", "backend-allow-loadtester"):
        selector = variant[f"AuthorizationPolicy/{name}"]["spec"]["selector"]["matchLabels"]
        assert "app" not in selector
        assert selector.items() <= pods.items()
        assert selector.items() <= primary.items()


def test_canary_keeps_the_base_routing_and_resilience(
    variant: dict[str, Any], base: dict[str, Any]
) -> None:
    service = variant["Canary/backend"]["spec"]["service"]
    assert (service["name"], service["port"], service["targetPort"]) == (
        "backend-service",
        5000,
        "http",
    )
    assert (service["portName"], service["appProtocol"]) == ("http", "http")
    stable = base["VirtualService/backend"]["spec"]["http"][-1]
    assert service["timeout"] == stable["timeout"]
    assert service["retries"] == stable["retries"]
    policy = base["DestinationRule/backend"]["spec"]["trafficPolicy"]
    # connectionPool.tcp is not in Flagger v1.44.0's CRD (mesh check: TM301)
    expected = {**policy, "connectionPool": {"http": policy["connectionPool"]["http"]}}
    assert service["trafficPolicy"] == expected


def test_analysis_mirrors_mesh_rollout(variant: dict[str, Any]) -> None:
    analysis = variant["Canary/backend"]["spec"]["analysis"]
    assert analysis["interval"] == "30s"
    assert analysis["stepWeights"] == [10, 25, 50]
    metrics = {m["name"]: m for m in analysis["metrics"]}
    assert metrics["error-rate"]["thresholdRange"] == {"max": 1}
    assert metrics["latency-p99"]["thresholdRange"] == {"max": 500}
    assert metrics["request-count"]["thresholdRange"] == {"min": 20}
    for metric in metrics.values():
        assert f"MetricTemplate/{metric['templateRef']['name']}" in variant
    hooks = {h["name"]: h for h in analysis["webhooks"]}
    assert hooks["acceptance-test"]["type"] == "pre-rollout"
    assert (
        "backend-service-canary.default:5000/api/tasks"
        in hooks["acceptance-test"]["metadata"]["cmd"]
    )
    assert "frontend-service.default:8000/api/tasks" in hooks["load-test"]["metadata"]["cmd"]
    for hook in hooks.values():
        assert hook["url"] == "http://flagger-loadtester.default/"
    assert "Service/flagger-loadtester" in variant


def dashboard_queries() -> dict[str, str]:
    """The dashboard's Istio panels: title -> the expression (p99 for latency)."""
    out: dict[str, str] = {}
    row = ""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel.get("type") == "row":
            row = panel["title"]
            continue
        if "Istio metrics" not in row:
            continue
        for target in panel.get("targets", []):
            if not target.get("legendFormat", "").startswith("p50"):
                out[panel["title"]] = target["expr"]
    return out


def for_the_canary(expr: str) -> str:
    """The dashboard's expression as a Flagger template for the canary's workload."""
    expr = expr.replace(
        'destination_service_name="backend-service"',
        'destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"',
    )
    expr = expr.replace("[$__rate_interval]", "[{{ interval }}]")
    expr = expr.replace("sum by (destination_version, le)", "sum by (le)")
    return expr.replace("sum by (destination_version) ", "sum")


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def test_metric_templates_are_the_dashboards_istio_queries(variant: dict[str, Any]) -> None:
    dashboard = dashboard_queries()
    templates = {
        k.split("/")[1]: d["spec"] for k, d in variant.items() if k.startswith("MetricTemplate/")
    }
    assert set(templates) == {"backend-error-rate", "backend-latency-p99", "backend-request-count"}
    for spec in templates.values():
        assert spec["provider"] == {
            "type": "prometheus",
            "address": "http://prometheus.istio-system:9090",
        }
    assert normal(templates["backend-error-rate"]["query"]) == normal(
        "100 * " + for_the_canary(dashboard["Error rate (5xx share)"])
    )
    assert normal(templates["backend-latency-p99"]["query"]) == normal(
        for_the_canary(dashboard["Latency p50 / p99"])
    )
    count = for_the_canary(dashboard["Request rate"]).replace("rate(", "increase(")
    assert normal(templates["backend-request-count"]["query"]) == normal(count)


def test_rollout_patch_is_the_base_v2(base: dict[str, Any]) -> None:
    patch = yaml.safe_load((VARIANT / "rollout-v2.yaml").read_text())
    v2 = base["Deployment/backend-v2"]["spec"]["template"]
    assert patch["spec"]["template"]["metadata"]["labels"] == {
        "version": v2["metadata"]["labels"]["version"]
    }
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    (base_container,) = v2["spec"]["containers"]
    assert container["name"] == base_container["name"]
    assert container["image"] == base_container["image"]
    env = {e["name"]: e.get("value") for e in base_container["env"]}
    assert container["env"] == [{"name": "APP_VERSION", "value": env["APP_VERSION"]}]
