"""Paths of the repository and of the offline tools the container tests run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DOCKERFILES = {"backend": ROOT / "Dockerfile.backend", "frontend": ROOT / "Dockerfile.frontend"}


def tool(name: str) -> str:
    """The dev tool NAME from the venv (installed by `make install`), else from PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found in {VENV_BIN} or PATH: run `make install`")
    return found


def run(
    argv: list[str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
