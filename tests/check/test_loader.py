"""The reader `mesh check` uses: the real kustomize, with each object's file kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mesh.check import check_tree
from mesh.check.loader import load_tree
from mesh.kustomize import BUILD_FLAGS, kubectl_binary

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
    out = subprocess.run(
        [str(kubectl_binary()), "kustomize", *BUILD_FLAGS, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


@pytest.mark.integration
@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_objects_as_kubectl_kustomize(directory: Path) -> None:
    """Whole objects, so a leftover origin annotation (or a lost field) fails."""
    theirs = kubectl_kustomize(directory)
    mine = {(r.kind, r.name): r.doc for r in load_tree(directory).resources}
    assert sorted(mine) == sorted(theirs)
    for key, doc in theirs.items():
        assert mine[key] == doc, key


def test_findings_name_the_source_file_not_the_kustomization() -> None:
    tree = load_tree(ROOT / "k8s")
    files = {r.file for r in tree.resources}
    assert "k8s/istio/virtualservice-backend.yaml" in files
    assert not any(f.endswith("kustomization.yaml") for f in files)
    assert not any("config.kubernetes.io/origin" in r.annotations for r in tree.resources)


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


def test_directory_without_kustomization_duplicates_are_tm004(tmp_path: Path) -> None:
    doc = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n"
    write(tmp_path / "a.yaml", doc)
    write(tmp_path / "b.yaml", doc)
    assert [(f.code, f.file) for f in check_tree(tmp_path)] == [("TM004", str(tmp_path / "b.yaml"))]


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
    assert [(r.name, r.index) for r in load_tree(tmp_path).resources] == [("b", 1)]


@pytest.mark.parametrize(
    ("kustomization", "files", "message"),
    [
        ("resources: [missing.yaml]\n", {}, "resources entry 'missing.yaml' does not exist"),
        ("resources: [bad.yaml]\n", {"bad.yaml": "a: [1\n"}, "MalformedYAMLError"),
        ("resources: [sub]\n", {"sub/x.txt": ""}, "unable to find one of 'kustomization.yaml'"),
        ("resources: [.]\n", {}, "cycle detected"),
        ("resourcez: []\n", {}, 'unknown field "resourcez"'),
        ("resources: [https://example.com/app]\n", {}, "cannot be read offline"),
        ("resources: [github.com/org/repo//k8s?ref=v1]\n", {}, "cannot be read offline"),
        ("resources: [x.yaml]\n", {"x.yaml": "just: data\n"}, "missing Resource metadata"),
        (
            "resources: []\npatches:\n  - path: p.yaml\n",
            {"p.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: nope}\n"},
            "no resource matches strategic merge patch",
        ),
    ],
)
def test_unreadable_tree_is_a_tm003_finding_on_the_kustomization(
    tmp_path: Path, kustomization: str, files: dict[str, str], message: str
) -> None:
    write(tmp_path / "kustomization.yaml", kustomization)
    for name, text in files.items():
        write(tmp_path / name, text)
    findings = check_tree(tmp_path)
    hits = [f for f in findings if message in f.message]
    assert [(f.code, f.file, f.kind) for f in hits] == [
        ("TM003", str(tmp_path / "kustomization.yaml"), "Kustomization")
    ], [f.line() for f in findings]
    assert "\n" not in hits[0].message


def test_an_error_in_a_base_names_the_base_kustomization(tmp_path: Path) -> None:
    write(tmp_path / "base" / "kustomization.yaml", "resources: [sa.yaml]\nfoo: 1\n")
    write(
        tmp_path / "base" / "sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n"
    )
    write(tmp_path / "overlay" / "kustomization.yaml", "resources: [../base]\n")
    (finding,) = check_tree(tmp_path / "overlay")
    assert finding.code == "TM003"
    assert finding.file == str(tmp_path / "base" / "kustomization.yaml")
    assert 'unknown field "foo"' in finding.message


def test_a_duplicate_id_is_tm004_on_the_file_that_adds_it(tmp_path: Path) -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"
    write(tmp_path / "a.yaml", sa)
    write(tmp_path / "b.yaml", sa)
    write(tmp_path / "kustomization.yaml", "resources: [a.yaml, b.yaml]\n")
    (finding,) = check_tree(tmp_path)
    assert (finding.code, finding.file, finding.kind, finding.name) == (
        "TM004",
        str(tmp_path / "b.yaml"),
        "ServiceAccount",
        "x",
    )
