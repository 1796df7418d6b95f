"""Fixtures for the real-Envoy tests: a whole local mesh per manifest directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.runner import LocalMesh
from tests.support.mesh import new_mesh

MeshFactory = Callable[[Path], LocalMesh]


@pytest.fixture(scope="module", name="start_mesh")
def _start_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshFactory]:
    """Start a mesh for a directory, once per module; all are stopped at module end."""
    started: list[LocalMesh] = []

    def start(directory: Path) -> LocalMesh:
        mesh = new_mesh(directory, tmp_path_factory.mktemp("mesh-state"))
        mesh.__enter__()
        started.append(mesh)
        return mesh

    try:
        yield start
    finally:
        for mesh in started:
            mesh.stop()
