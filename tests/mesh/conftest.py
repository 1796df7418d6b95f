"""Fixtures for the real-Envoy tests: a whole local mesh per manifest directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.manifests import load
from mesh.runner import LocalMesh
from tests.support.procs import free_port

MeshFactory = Callable[[Path], LocalMesh]


def new_mesh(directory: Path, state_dir: Path) -> LocalMesh:
    """A LocalMesh of DIRECTORY on free ports (gateway, admin, every Service)."""
    services = {s.name: free_port() for s in load(directory).services}
    return LocalMesh(
        directory,
        gateway_port=free_port(),
        admin_port=free_port(),
        service_ports=services,
        state_dir=state_dir,
    )


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
