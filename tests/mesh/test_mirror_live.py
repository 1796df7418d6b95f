"""Traffic mirroring on the real Envoy (Istio's "Mirroring" task): with k8s/variants/mirror
applied, v1 answers every ordinary request and v2 gets a copy of each, whose answer is
dropped; `x-canary: true` still goes to v2 alone, and is not copied."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mesh.runner import LocalMesh
from tests.loop.support import copy_k8s
from tests.mesh.support import VARIANTS, backend_cluster
from tests.mesh.traffic import poll, stat, versions
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

LISTED = 25


def served(mesh: LocalMesh, version: str) -> int:
    """GET /api/tasks requests the replicas of VERSION counted themselves (their /metrics)."""
    total = 0
    for pod in mesh.workloads:
        if pod.deployment != f"backend-{version}":
            continue
        text = httpx.get(f"{mesh.instance_url(pod.name)}/metrics", timeout=5.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "http_server_requests_total" and (
                    labels.get("route"),
                    labels.get("method"),
                ) == ("/api/tasks", "GET"):
                    total += int(sample.value)
    return total


def test_the_mirror_variant_copies_each_request_to_v2_and_answers_from_v1(
    tmp_path: Path,
) -> None:
    with new_mesh(copy_k8s(tmp_path), tmp_path / "state") as mesh:
        url = f"{mesh.service_url('backend-service')}/api/tasks"
        before = {v: served(mesh, v) for v in ("v1", "v2")}
        assert versions(url, 5) == {"v1": 5}  # no mirror yet: v2 sees nothing
        assert served(mesh, "v2") == before["v2"]

        outcome = mesh.apply(VARIANTS / "mirror")
        assert outcome["result"] == "applied", outcome
        start = {v: served(mesh, v) for v in ("v1", "v2")}
        sent_to_v2 = stat(mesh, backend_cluster("v2"), "upstream_rq_total")
        assert versions(url, LISTED) == {"v1": LISTED}  # every answer is still v1's
        # the copies are fire and forget: wait until v2 has counted every one of them
        poll(
            lambda: min(served(mesh, v) - start[v] for v in ("v1", "v2")) >= LISTED,
            timeout=60,
            what=f"v2 to receive the {LISTED} mirrored requests",
        )
        counted_by_v1 = served(mesh, "v1") - start["v1"]
        assert served(mesh, "v2") - start["v2"] == LISTED == counted_by_v1
        # what `mesh status` shows: Envoy counts the copies as the v2 cluster's requests
        assert stat(mesh, backend_cluster("v2"), "upstream_rq_total") - sent_to_v2 == LISTED

        # a canary request goes to v2 alone: nothing is mirrored for it
        canary = versions(url, 3, headers={"x-canary": "true"})
        assert canary == {"v2": 3}
        poll(
            lambda: served(mesh, "v2") - start["v2"] >= LISTED + 3,
            timeout=60,
            what="v2 to count the 3 canary requests",
        )
        assert served(mesh, "v2") - start["v2"] == LISTED + 3
        assert served(mesh, "v1") - start["v1"] == LISTED
