"""A LocalMesh on free ports: the one way tests build a whole local mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh.manifests import load
from mesh.runner import LocalMesh
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def new_mesh(directory: Path, state_dir: Path, **options: Any) -> LocalMesh:
    """A LocalMesh of DIRECTORY on free ports (gateway, admin, every Service).

    OPTIONS go to LocalMesh as they are (``traces_port``, ``sidecars``, ...).
    """
    services = {s.name: free_port() for s in load(directory).services}
    return LocalMesh(
        directory,
        gateway_port=free_port(),
        admin_port=free_port(),
        service_ports=services,
        state_dir=state_dir,
        **options,
    )
