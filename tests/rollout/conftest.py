"""One `mesh up` process for the rollout tests (module scope: a start costs seconds),
put back as the files say before each test: faults off, the default route's weights
as the files say, and Envoy serving them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loop.support import copy_k8s
from tests.rollout.support import Mesh, reset
from tests.support.mesh_up import mesh_up


@pytest.fixture(name="up", scope="module")
def _up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("rollout")
    with mesh_up(copy_k8s(work), work) as running:
        yield Mesh(running)


@pytest.fixture(name="mesh")
def _mesh(up: Mesh) -> Mesh:
    reset(up)
    return up
