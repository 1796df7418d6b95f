"""The kustomize-subset loader: same objects as `kubectl kustomize`, file names kept."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.check import check_tree
from mesh.check.loader import load_tree

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
KUSTOMIZE_DIRS = [
    ROOT / "k8s",
    *sorted(p for p in (ROOT / "k8s" / "variants").iterdir() if p.is_dir()),
    FIXTURES / "base",
    *sorted(FIXTURES.glob("*/fixed")),
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def kubectl_kustomize(directory: Path) -> dict[tuple[str, str], dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is part of the base image (google-cloud-cli)"
    out = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


@pytest.mark.integration
@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_objects_as_kubectl_kustomize(directory: Path) -> None:
    theirs = kubectl_kustomize(directory)
    mine = {}
    for res in load_tree(directory).resources:
        doc = copy.deepcopy(res.doc)
        doc.setdefault("metadata", {})["namespace"] = res.namespace
        mine[(res.kind, res.name)] = doc
    for doc in theirs.values():
        doc["metadata"].setdefault("namespace", "default")
    assert sorted(mine) == sorted(theirs)
    for key, doc in theirs.items():
        assert mine[key] == doc, key


def test_findings_name_the_source_file_not_the_kustomization() -> None:
    tree = load_tree(ROOT / "k8s")
    files = {r.file for r in tree.resources}
    assert "k8s/istio/virtualservice-backend.yaml" in files
    assert not any(f.endswith("kustomization.yaml") for f in files)


def test_namespace_from_the_kustomization_wins(tmp_path: Path) -> None:
    write(
        tmp_path / "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  namespace: other\n",
    )
    write(tmp_path / "kustomization.yaml", "namespace: demo\nresources: [sa.yaml]\n")
    assert [r.namespace for r in load_tree(tmp_path).resources] == ["demo"]


def test_directory_without_kustomization_reads_every_yaml_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")
    write(tmp_path / "sub" / "b.yml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n")
    write(tmp_path / "notes.txt", "not yaml: [")
    assert sorted(r.name for r in load_tree(tmp_path).resources) == ["a", "b"]


def test_json6902_patch_with_target(tmp_path: Path) -> None:
    write(tmp_path / "sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")
    write(
        tmp_path / "kustomization.yaml",
        "resources: [sa.yaml]\npatches:\n  - target: {kind: ServiceAccount, name: a}\n"
        "    patch: |-\n      - op: add\n        path: /automountServiceAccountToken\n"
        "        value: false\n",
    )
    (res,) = load_tree(tmp_path).resources
    assert res.doc["automountServiceAccountToken"] is False


def test_delete_patch_removes_the_object(tmp_path: Path) -> None:
    write(
        tmp_path / "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\n"
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n",
    )
    write(
        tmp_path / "kustomization.yaml",
        "resources: [sa.yaml]\npatches:\n  - patch: |-\n"
        "      $patch: delete\n      apiVersion: v1\n      kind: ServiceAccount\n"
        "      metadata: {name: a}\n",
    )
    assert [r.name for r in load_tree(tmp_path).resources] == ["b"]


@pytest.mark.parametrize(
    ("kustomization", "files", "message"),
    [
        ("resources: [missing.yaml]\n", {}, "resource 'missing.yaml' does not exist"),
        ("resources: [bad.yaml]\n", {"bad.yaml": "a: [1\n"}, "invalid YAML (line 2)"),
        ("resources: [sub]\n", {"sub/x.txt": ""}, "has no kustomization.yaml"),
        ("resources: [.]\n", {}, "cycle"),
        ("images: []\nresources: []\n", {}, "field 'images' is not supported"),
        ("resources: [https://example.com/app]\n", {}, "cannot be read offline"),
        ("resources: [x.yaml]\n", {"x.yaml": "just: data\n"}, "needs apiVersion and kind"),
        (
            "resources: []\npatches:\n  - path: p.yaml\n",
            {"p.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: nope}\n"},
            "matches no resource",
        ),
    ],
)
def test_unreadable_tree_is_a_tm003_finding(
    tmp_path: Path, kustomization: str, files: dict[str, str], message: str
) -> None:
    write(tmp_path / "kustomization.yaml", kustomization)
    for name, text in files.items():
        write(tmp_path / name, text)
    findings = check_tree(tmp_path)
    assert [f.code for f in findings if message in f.message] == ["TM003"], [
        f.line() for f in findings
    ]
