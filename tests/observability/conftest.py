"""A local mesh of k8s/ with the trace receiver on, shared by a test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.runner import LocalMesh
from tests.support.mesh import mesh_starter
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANTS = K8S / "variants"

MeshFactory = Callable[[Path], LocalMesh]


@pytest.fixture(scope="module", name="start_mesh")
def _start_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshFactory]:
    """Start a traced mesh of a directory on free ports; stopped at module end."""
    with mesh_starter(tmp_path_factory, traces_port=free_port) as start:
        yield start
