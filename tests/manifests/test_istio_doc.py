"""docs/how-istio-works.md cannot rot: every file it points to exists, every
`mesh` subcommand it shows is real, and every rule code it cites is known."""

from __future__ import annotations

import re
from pathlib import Path

from mesh.check import CODES
from mesh.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "how-istio-works.md").read_text()


def test_every_referenced_path_exists() -> None:
    paths = set(re.findall(r"\b((?:k8s|mesh|telemetry|scripts|docs)/[\w./*-]*\w/?)", DOC))
    assert paths, "the doc should point at the files that do the work"
    missing = sorted(p for p in paths if not list(ROOT.glob(p.rstrip("/"))))
    assert missing == []


def test_every_manifest_file_named_by_basename_exists() -> None:
    names = set(re.findall(r"`([\w-]+\.yaml)`", DOC))
    on_disk = {p.name for p in (ROOT / "k8s").rglob("*.yaml")}
    assert names and names <= on_disk


def test_every_mesh_command_shown_is_a_subcommand() -> None:
    shown = set(re.findall(r"\bmesh (\w[\w-]*)", DOC)) & set(
        re.findall(r"(?:\.venv/bin/|`)mesh ([\w-]+)", DOC)
    )
    assert {"up", "load", "status", "fault", "check"} <= shown
    assert shown <= set(SUBCOMMANDS)


def test_every_cited_code_is_a_checker_code() -> None:
    cited = set(re.findall(r"\b(IST\d{4}|TM\d{3})\b", DOC))
    assert cited and cited <= set(CODES)
