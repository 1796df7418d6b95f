"""A whole local mesh of k8s/ on free ports, once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.manifests import load
from mesh.runner import LocalMesh
from tests.support.procs import free_port

K8S = Path(__file__).resolve().parents[2] / "k8s"


def new_mesh(state_dir: Path, directory: Path = K8S) -> LocalMesh:
    services = {s.name: free_port() for s in load(directory).services}
    return LocalMesh(
        directory,
        gateway_port=free_port(),
        admin_port=free_port(),
        service_ports=services,
        state_dir=state_dir,
    )


@pytest.fixture(scope="module", name="mesh")
def _mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with new_mesh(tmp_path_factory.mktemp("mesh-state")) as mesh:
        yield mesh
