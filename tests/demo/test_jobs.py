"""k8s/jobs: the in-cluster circuit-breaker load (fortio Job), checked offline.

The Job must run Istio's task (-c 3 -n 30 on backend-service) from a meshed pod
with its own identity, that identity must be allowed by an AuthorizationPolicy
of its own, and the set must render, validate strictly and pass checkov.
"""

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

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "k8s" / "jobs"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = VENV_BIN / name if (VENV_BIN / name).exists() else shutil.which(name)
    assert found, f"{name} not found: run `make install`"
    return str(found)


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def rendered() -> str:
    out = run([tool("kubectl"), "kustomize", str(JOBS)])
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def by_kind(rendered: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(rendered)}


def test_jobs_are_not_in_the_default_kustomization() -> None:
    default = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text())
    assert not [r for r in default["resources"] if r.startswith("jobs")]


def test_mesh_check_finds_no_error() -> None:
    errors = [f.line() for f in check_tree(JOBS) if f.severity is Severity.ERROR]
    assert errors == []


def test_kustomize_lists_every_file() -> None:
    listed = yaml.safe_load((JOBS / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in JOBS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


def test_fortio_runs_istios_task_against_the_backend(by_kind: dict[str, dict[str, Any]]) -> None:
    job = by_kind["Job"]
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    image, _, tag = container["image"].partition(":")
    assert image == "fortio/fortio" and tag and tag != "latest"
    args = container["args"]
    assert args[0] == "load"
    assert args[args.index("-c") + 1] == "3" and args[args.index("-n") + 1] == "30"
    assert args[args.index("-qps") + 1] == "0"
    assert args[-1] == "http://backend-service:5000/api/tasks"
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    # a native sidecar stops with fortio, so the Job completes
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0


def test_own_identity_allowed_by_its_own_policy(by_kind: dict[str, dict[str, Any]]) -> None:
    account = by_kind["ServiceAccount"]["metadata"]["name"]
    pod_spec = by_kind["Job"]["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == account != "frontend"
    policy = by_kind["AuthorizationPolicy"]
    assert policy["spec"]["action"] == "ALLOW"
    backend = yaml.safe_load((ROOT / "k8s" / "deployments" / "backend-v1.yaml").read_text())
    pod_labels = backend["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (rule,) = policy["spec"]["rules"]
    principal = f"cluster.local/ns/{by_kind['Job']['metadata']['namespace']}/sa/{account}"
    assert rule["from"][0]["source"]["principals"] == [principal]
    assert rule["to"][0]["operation"]["methods"] == ["GET"]


@pytest.mark.integration
def test_kubernetes_validate_strict(rendered: str) -> None:
    out = run([tool("kubernetes-validate"), "--strict", "-k", "1.30.0", "-"], stdin=rendered)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed for resource job/load-circuit-breaker" in out.stdout + out.stderr


@pytest.mark.integration
def test_checkov_clean_and_every_skip_says_why() -> None:
    out = run(
        [tool("checkov"), "-d", str(JOBS), "--framework", "kubernetes", "--skip-download"]
        + ["--compact", "-o", "json"]
    )
    report = json.loads(out.stdout)
    assert [c["check_id"] for c in report["results"]["failed_checks"]] == []
    assert report["summary"]["passed"] > 50
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 30, f"{skipped['check_id']}: no reason"
