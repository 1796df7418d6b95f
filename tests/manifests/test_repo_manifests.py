"""The repository's own manifests: checked by `mesh check`, rendered by kustomize,
scanned by checkov, and held to the contract the other parts rely on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.check import Severity, check_tree
from mesh.check.loader import load_tree

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANTS = sorted(p for p in (K8S / "variants").iterdir() if p.is_dir())
VENV_BIN = Path(sys.executable).parent


def objects(directory: Path = K8S) -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> object, as `kubectl apply -k` would create them."""
    return {f"{r.kind}/{r.name}": r.doc for r in load_tree(directory).resources}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def tool(name: str) -> str:
    found = VENV_BIN / name if (VENV_BIN / name).exists() else shutil.which(name)
    assert found, f"{name} not found: run `make install`"
    return str(found)


# --- mesh check -------------------------------------------------------------


def test_mesh_check_finds_nothing_in_k8s() -> None:
    assert [f.line() for f in check_tree(K8S)] == []


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.name)
def test_mesh_check_finds_no_error_in_variants(variant: Path) -> None:
    errors = [f.line() for f in check_tree(variant) if f.severity is Severity.ERROR]
    assert errors == []


def test_kustomization_is_plain_resources_and_namespace() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources"}
    listed = {str(K8S / r) for r in kustomization["resources"]}
    on_disk = {
        str(p)
        for p in K8S.rglob("*.yaml")
        # variants/ and jobs/ are kustomizations of their own, outside the default set
        if not {"variants", "jobs"} & set(p.parts) and p.name != "kustomization.yaml"
    }
    assert listed == on_disk


# --- offline tools ----------------------------------------------------------


@pytest.mark.integration
def test_kubectl_kustomize_renders_k8s() -> None:
    out = run([tool("kubectl"), "kustomize", "k8s"])
    assert out.returncode == 0, out.stderr
    rendered = {f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(out.stdout)}
    assert rendered == set(objects())


@pytest.mark.integration
def test_checkov_has_no_failed_check_and_every_skip_says_why() -> None:
    out = run(
        [
            tool("checkov"),
            "-d",
            "k8s",
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ]
    )
    report = json.loads(out.stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert out.returncode == 0
    assert report["summary"]["passed"] > 100
    skipped_checks = report["results"]["skipped_checks"]
    assert len(skipped_checks) == report["summary"]["skipped"]
    for skipped in skipped_checks:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 30, f"{skipped['check_id']} on {skipped['resource']}: no reason"


# --- the contract other parts rely on ---------------------------------------

DEPLOYMENTS = {
    "backend-v1": ("backend", "v1", 2, "taskmesh-backend:v1", 5000),
    "backend-v2": ("backend", "v2", 1, "taskmesh-backend:v2", 5000),
    "frontend": ("frontend", "v1", 1, "taskmesh-frontend:v1", 8000),
}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_contract_and_hardening(name: str) -> None:
    app, version, replicas, image, port = DEPLOYMENTS[name]
    deploy = objects()[f"Deployment/{name}"]
    spec, template = deploy["spec"], deploy["spec"]["template"]
    labels = {"app": app, "version": version}
    assert spec["replicas"] == replicas
    assert labels.items() <= spec["selector"]["matchLabels"].items()
    assert labels.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["labels"].get("sidecar.istio.io/inject") == "true"
    assert "sidecar.istio.io/inject" not in template["metadata"].get("annotations", {})
    proxy = yaml.safe_load(template["metadata"]["annotations"]["proxy.istio.io/config"])
    assert proxy == {"holdApplicationUntilProxyStarts": True}
    pod = template["spec"]
    assert pod["serviceAccountName"] == app
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["terminationGracePeriodSeconds"] > 5
    (container,) = pod["containers"]
    assert container["image"] == image
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e for e in container["env"]}
    assert env["APP_VERSION"]["value"] == version
    assert env["PORT"]["value"] == str(port)
    assert not [n for n in env if n.startswith(("BACKEND_SERVICE_", "FRONTEND_SERVICE_"))]


def test_backend_pods_share_the_task_store() -> None:
    objs = objects()
    claim = objs["PersistentVolumeClaim/tasks-store"]
    assert claim["spec"]["accessModes"]
    for name in ("backend-v1", "backend-v2"):
        pod = objs[f"Deployment/{name}"]["spec"]["template"]["spec"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["tasks-store"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert str(Path(env["TASKS_DB"]).parent) in mounts


@pytest.mark.parametrize(("name", "port"), [("backend-service", 5000), ("frontend-service", 8000)])
def test_services_are_cluster_ip_with_http_ports(name: str, port: int) -> None:
    spec = objects()[f"Service/{name}"]["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    (entry,) = spec["ports"]
    assert (entry["name"], entry["port"], entry.get("appProtocol")) == ("http", port, "http")


def test_istio_objects_use_v1_apis() -> None:
    for key, doc in objects().items():
        group, _, version = doc["apiVersion"].rpartition("/")
        if group.endswith("istio.io"):
            assert version == "v1", key


def test_canary_routing_and_resilience() -> None:
    objs = objects()
    vs = objs["VirtualService/backend"]["spec"]
    assert vs["hosts"] == ["backend-service"]
    assert "gateways" not in vs
    canary, stable = vs["http"]
    assert canary["match"] == [{"headers": {"x-canary": {"exact": "true"}}}]
    assert [r["destination"]["subset"] for r in canary["route"]] == ["v2"]
    assert "match" not in stable
    assert [r["destination"]["subset"] for r in stable["route"]] == ["v1"]
    for rule in (canary, stable):
        assert rule["timeout"] == "5s"
        assert rule["retries"]["attempts"] > 0
    dr = objs["DestinationRule/backend"]["spec"]
    assert [s["name"] for s in dr["subsets"]] == ["v1", "v2"]
    assert dr["trafficPolicy"]["connectionPool"]
    outlier = dr["trafficPolicy"]["outlierDetection"]
    assert outlier == {
        "consecutive5xxErrors": 3,
        "interval": "1s",
        "baseEjectionTime": "15s",
        "maxEjectionPercent": 50,
    }


def test_edge_gateway_and_admin_blocked() -> None:
    objs = objects()
    gateway = objs["Gateway/taskmesh-gateway"]["spec"]
    assert gateway["selector"] == {"istio": "ingressgateway"}
    (server,) = gateway["servers"]
    assert (server["port"]["number"], server["port"]["protocol"], server["hosts"]) == (
        80,
        "HTTP",
        ["*"],
    )
    vs = objs["VirtualService/frontend"]["spec"]
    assert vs["gateways"] == ["taskmesh-gateway"]
    admin, rest = vs["http"]
    assert admin["match"] == [{"uri": {"prefix": "/admin"}}]
    assert admin["directResponse"]["status"] == 404
    assert rest["route"][0]["destination"]["host"] == "frontend-service"


def test_security_policies() -> None:
    objs = objects()
    assert objs["PeerAuthentication/default"]["spec"] == {"mtls": {"mode": "STRICT"}}
    backend = objs["AuthorizationPolicy/backend-allow-frontend"]["spec"]
    assert backend["action"] == "ALLOW"
    (rule,) = backend["rules"]
    assert rule["from"][0]["source"]["principals"] == ["cluster.local/ns/default/sa/frontend"]
    assert rule["to"][0]["operation"]["paths"] == ["/api/*"]
    frontend = objs["AuthorizationPolicy/frontend-allow-gateway"]["spec"]
    (rule,) = frontend["rules"]
    assert rule["from"][0]["source"]["principals"] == [
        "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
    ]
    assert "/admin/*" in rule["to"][0]["operation"]["notPaths"]
    telemetry = objs["Telemetry/access-logs"]["spec"]
    assert telemetry["accessLogging"] == [{"providers": [{"name": "envoy"}]}]
