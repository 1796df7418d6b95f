"""A whole local mesh of k8s/ on free ports, once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.runner import LocalMesh
from tests.support.mesh import new_mesh

K8S = Path(__file__).resolve().parents[2] / "k8s"


def k8s_mesh(state_dir: Path, directory: Path = K8S) -> LocalMesh:
    return new_mesh(directory, state_dir)


@pytest.fixture(scope="module", name="mesh")
def _mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with k8s_mesh(tmp_path_factory.mktemp("mesh-state")) as mesh:
        yield mesh
