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
    assert (code, severity, obj) == ("IST0101", "error", "VirtualService/backend:")
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
    assert err == ["mesh check: no/such/dir: no such directory"]


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
