"""mesh.manifests: a directory read as `kubectl apply -k` reads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.errors import ManifestError
from mesh.kustomize import merge
from mesh.manifests import Deployment, Service, load
from tests.mesh.support import K8S, VARIANTS, overlay, vs_patch

DIRS = [K8S, VARIANTS / "weighted", VARIANTS / "circuit-breaker"]


def kubectl_kustomize(directory: Path) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.integration
@pytest.mark.parametrize("directory", DIRS, ids=lambda p: p.name)
def test_loader_reads_what_kubectl_kustomize_renders(directory: Path) -> None:
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in kubectl_kustomize(directory)}
    ours = {(o.kind, o.name): o for o in load(directory).objects}
    assert sorted(ours) == sorted(rendered)
    for key, obj in ours.items():
        assert obj.namespace == rendered[key]["metadata"].get("namespace", "default")
        assert obj.raw.get("spec") == rendered[key].get("spec"), key


def test_variant_resource_lists_equal_the_base_list() -> None:
    """The variants cannot say `resources: [../..]` (kustomize calls that a cycle), so
    they repeat the base's list; it must not drift."""
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    for variant in ("weighted", "circuit-breaker"):
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


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    patch = {"a": {"c": [3], "e": 2}, "d": None}
    assert merge(target, patch, core=False) == {"a": {"b": 1, "c": [3], "e": 2}}
    assert target == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not mutated


def test_merge_patch_drops_nulls_inside_new_maps() -> None:
    assert merge({"a": 1}, {"b": {"c": None, "d": 2}}, core=False) == {"a": 1, "b": {"d": 2}}
    assert merge({"a": 1}, {"a": {"c": None}}, core=False) == {"a": {}}


def test_strategic_merge_of_a_deployment_merges_env_by_name(tmp_path: Path) -> None:
    """The reader `mesh check` uses: built-in kinds get kustomize's strategic merge."""
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
    assert env == [(e.name, e.value, e.field_path) for e in container.env] + [("EXTRA", "1", None)]
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
    assert v2.source.patched_by == ("inline patch",)


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
    with pytest.raises(ManifestError, match="path /spec/nothing/here does not exist"):
        load(d)


def test_patch_records_its_file_and_replaces_lists(tmp_path: Path) -> None:
    http = [{"name": "only", "route": [{"destination": {"host": "backend-service"}}]}]
    d = overlay(tmp_path / "o", patches=[vs_patch("backend", http)])
    vs = next(v for v in load(d).virtual_services if v.name == "backend")
    assert vs.spec["http"] == http
    assert vs.spec["hosts"] == ["backend-service"]  # merged, not replaced
    assert vs.source.patched_by and vs.source.patched_by[0].endswith("patch-0.yaml")


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
            "kustomization.yaml: resource 'missing.yaml' does not exist",
        ),
        ("namePrefix: x-\nresources: []\n", {}, "field 'namePrefix' is not supported"),
        (
            "resources: [a.yaml, b.yaml]\n",
            {"a.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"}
            | {"b.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"},
            "ServiceAccount/x is already defined in",
        ),
        ("resources: [a.yaml]\n", {"a.yaml": "kind: [\n"}, "a.yaml: invalid YAML (line"),
        (
            "resources: []\npatches: [{path: p.yaml}]\n",
            {"p.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: nope}\n"},
            "patch Service/nope matches no resource",
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
