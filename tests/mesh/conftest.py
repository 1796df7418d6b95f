"""Fixtures for the real-Envoy tests: a whole local mesh per manifest directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.runner import LocalMesh
from tests.support.mesh import mesh_starter

MeshFactory = Callable[[Path], LocalMesh]


@pytest.fixture(scope="module", name="start_mesh")
def _start_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshFactory]:
    """Start a mesh for a directory, once per module; all are stopped at module end."""
    with mesh_starter(tmp_path_factory) as start:
        yield start
