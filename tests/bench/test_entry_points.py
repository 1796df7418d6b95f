"""Every bench script a reader runs by path (the Makefile's `bench/run.py`, the README's
`bench/compare.py REV`, ...) starts and prints its usage: a split that drops a
`__main__` block, or an import that only works from the repo root, shows here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    p.relative_to(REPO).as_posix()
    for p in (REPO / "bench").glob("*.py")
    if re.search(r'^if __name__ == "__main__":', p.read_text(), re.MULTILINE)
    and p.name != "servers.py"  # run as `python -m bench.servers serve-traced-backend`
)


def test_the_scripts_are_found() -> None:
    assert "bench/run.py" in SCRIPTS and len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_prints_its_usage(script: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / script), "--help"],
        cwd=tmp_path,  # not the repo root: the script makes `bench` importable itself
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:"), proc.stdout[:200]
