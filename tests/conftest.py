"""Session-wide: the inputs a fresh clone lacks on purpose.

k8s/variants/postgres's secretGenerator reads postgres.env, a random password git
ignores (never committed in clear). Every test that renders the variants (kubectl
kustomize, mesh check, mesh up) needs it, as `scripts/minikube.sh` does: the same
script writes it once, before any test, when it is missing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def sidecar_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`mesh up --sidecars` of k8s/ on free ports (a LocalMesh), one per test module that
    asks for it, stopped after the module."""
    from tests.mesh.support import K8S  # imported here: most tests start no mesh
    from tests.support.mesh import new_mesh

    with new_mesh(K8S, tmp_path_factory.mktemp("sidecar-mesh"), sidecars=True) as mesh:
        yield mesh
