"""Session-wide: the inputs a fresh clone lacks on purpose.

k8s/variants/postgres's secretGenerator reads postgres.env, a random password git
ignores (never committed in clear). Every test that renders the variants (kubectl
kustomize, mesh check, mesh up) needs it, as `scripts/minikube.sh` does: the same
script writes it once, before any test, when it is missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _postgres_secret() -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres-secret.sh")],
        check=True,
        capture_output=True,
        timeout=60,
    )
