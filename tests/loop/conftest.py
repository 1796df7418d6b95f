"""A fresh local mesh per test, on a copy of k8s/ the test may edit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.runner import LocalMesh
from tests.loop.support import copy_k8s
from tests.support.mesh import new_mesh


@pytest.fixture(name="tree")
def _tree(tmp_path: Path) -> Path:
    return copy_k8s(tmp_path)


@pytest.fixture(name="mesh")
def _mesh(tree: Path, tmp_path: Path) -> Iterator[LocalMesh]:
    with new_mesh(tree, tmp_path / "state") as mesh:
        yield mesh
