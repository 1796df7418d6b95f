"""A LocalMesh on free ports: the one way tests build a whole local mesh."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.manifests import load
from mesh.runner import LocalMesh
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def new_mesh(directory: Path, state_dir: Path, **options: Any) -> LocalMesh:
    """A LocalMesh of DIRECTORY on free ports (gateway, admin, every Service).

    OPTIONS go to LocalMesh as they are (``traces_port``, ``sidecars``, ``gateway_port``
    for a tree whose Gateways have several ports: they take that port and the next ones).
    """
    services = {s.name: free_port() for s in load(directory).services}
    options.setdefault("gateway_port", free_port())
    return LocalMesh(
        directory,
        admin_port=free_port(),
        service_ports=services,
        state_dir=state_dir,
        **options,
    )


@contextlib.contextmanager
def mesh_starter(
    tmp_path_factory: pytest.TempPathFactory, **options: Any
) -> Iterator[Callable[[Path], LocalMesh]]:
    """A function that starts a mesh of a directory; every mesh it started stops on exit.

    For module-scoped ``start_mesh`` fixtures: OPTIONS go to ``new_mesh``; a callable
    option value (e.g. ``traces_port=free_port``) is called anew for each mesh.
    """
    started: list[LocalMesh] = []

    def start(directory: Path) -> LocalMesh:
        resolved = {k: v() if callable(v) else v for k, v in options.items()}
        mesh = new_mesh(directory, tmp_path_factory.mktemp("mesh-state"), **resolved)
        mesh.__enter__()
        started.append(mesh)
        return mesh

    try:
        yield start
    finally:
        for mesh in started:
            mesh.stop()
