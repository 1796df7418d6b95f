"""`mesh check [DIR] [--json]`: output lines, exit status, JSON, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.check import CODES
from mesh.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def test_clean_tree_exits_0_and_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(FIXTURES / "base")]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "0 errors, 0 warnings, 0 infos" in err


def test_error_exits_1_with_one_line_per_finding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(FIXTURES / "vs-subset" / "broken")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    code, severity, file, obj, *_ = lines[0].split(" ")
    assert (code, severity, obj) == ("IST0101", "error", "default/VirtualService/backend:")
    assert Path(file).is_file()


def test_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(FIXTURES / "dr-max-ejection" / "broken")]) == 0
    assert capsys.readouterr().out.startswith("TM103 warning ")


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", str(FIXTURES / "authz-principal" / "broken")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["errors"] is True
    (finding,) = data["findings"]
    assert finding["code"] == "TM104"
    assert finding["severity"] == "error"
    assert finding["kind"] == "AuthorizationPolicy"
    assert finding["name"] == "backend-allow-frontend"
    assert "frontend-sa" in finding["message"]


def test_missing_directory_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no/such/dir"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mesh check: no/such/dir: no such file or directory"]


def test_codes_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--codes"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(CODES)


def test_default_directory_is_k8s(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert "TM003 error k8s/kustomization.yaml" in capsys.readouterr().out


TWO_NAMESPACES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: team-a}
spec:
  hosts: [backend-service]
  http:
    - route: [{destination: {host: backend-service, subset: v9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: team-b}
spec:
  hosts: [backend-service]
  http:
    - route: [{destination: {host: backend-service, subset: v9}}]
"""


def test_same_name_in_two_namespaces_gives_two_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vs.yaml").write_text(TWO_NAMESPACES)
    assert main(["check", str(tmp_path)]) == 1
    objects = [line.split(" ")[3] for line in capsys.readouterr().out.splitlines()]
    # each: the host matches no Service, and no DestinationRule defines the subset
    assert objects == 2 * ["team-a/VirtualService/backend:"] + 2 * [
        "team-b/VirtualService/backend:"
    ]
    assert main(["check", "--json", str(tmp_path)]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["namespace"], f["name"]) for f in findings] == [
        ("team-a", "backend"),
        ("team-a", "backend"),
        ("team-b", "backend"),
        ("team-b", "backend"),
    ]


def test_a_single_file_is_checked_alone(capsys: pytest.CaptureFixture[str]) -> None:
    istio = FIXTURES / "base" / "istio.yaml"
    assert main(["check", "--json", str(istio)]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    # without the tree's Services every destination is unknown, as for istioctl analyze FILE
    assert {f["code"] for f in findings} == {"IST0101", "IST0174", "IST0127", "TM104"}
    assert {f["file"] for f in findings} == {"tests/check/fixtures/base/istio.yaml"}
    assert main(["check", str(FIXTURES / "base" / "workloads.yaml")]) == 0


def test_a_kustomization_file_stands_for_its_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", str(FIXTURES / "vs-subset" / "broken" / "kustomization.yaml")]) == 1
    out = capsys.readouterr().out
    assert main(["check", str(FIXTURES / "vs-subset" / "broken")]) == 1
    assert capsys.readouterr().out == out
