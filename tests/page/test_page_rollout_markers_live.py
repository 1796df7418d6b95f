"""The live traffic chart marks `mesh rollout`'s verdicts beside each step's generation:
a promotion, and a rollback with its reason. Everything is real: a local mesh on a copy
of k8s/ (real Envoy), Chromium, and two rollouts driven in this process with their own
load (the second against a v2 answering 503s)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from mesh.rollout.judge import Thresholds
from mesh.rollout.plan import make_plan
from mesh.rollout.report import Console, Outcome
from mesh.rollout.run import Rollout
from mesh.rollout.target import InProcessMesh
from mesh.runner import LocalMesh
from tests.loop.support import copy_k8s
from tests.page.conftest import Tab
from tests.page.test_page_markers_live import (
    MARKER_TIMEOUT_MS,
    keep_running,
    marker,
    start_traffic,
)
from tests.support.mesh import new_mesh

pytestmark = pytest.mark.integration

SERVICE = "backend-service"
LIMITS = Thresholds(max_error_rate=1.0, max_p99_ms=500.0, min_requests=5)


@pytest.fixture(scope="module")
def rollout_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    tree = copy_k8s(tmp_path_factory.mktemp("rollout-markers"))
    with new_mesh(tree, tmp_path_factory.mktemp("rollout-markers-state")) as mesh:
        yield mesh


def rollout(mesh: LocalMesh) -> Outcome:
    """`mesh rollout backend-service --to v2 --steps 100 --interval 1s --load 30`."""
    target = InProcessMesh(mesh)
    plan = make_plan(target, SERVICE, "v2", None, "100", "1s", LIMITS)
    return Rollout(target, plan, Console(say=lambda _: None), load_qps=30).run()


def test_the_chart_marks_a_promotion_and_a_rollback(rollout_mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    page.goto(rollout_mesh.gateway_url)
    start_traffic(page)

    promoted = rollout(rollout_mesh)
    assert promoted.result == "promoted", promoted.reason
    assert rollout_mesh.generation is not None
    step = marker(page, f"gen {rollout_mesh.generation.number}")  # the step's generation
    expect(step).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(step).to_have_attribute("title", re.compile(r"Applied .*from rollout"))
    done = marker(page, f"promoted {SERVICE}")
    expect(done).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(done).to_have_class(re.compile(r"\bconfig\b"))
    expect(done).to_have_attribute(
        "title", re.compile(rf"Normal Promoted rollout/{SERVICE}: v2 passed every step")
    )

    keep_running(page)
    rollout_mesh.set_route_weights(SERVICE, None)  # v1 as the files say, then a faulty v2
    fault = rollout_mesh.instance_url("backend-v2-0") + "/admin/fault"
    body = {"status": 503, "error_rate": 0.3, "delay_ms": 0, "delay_rate": 0.0}
    httpx.put(fault, json=body, timeout=5.0).raise_for_status()
    try:
        rolled = rollout(rollout_mesh)
    finally:
        httpx.delete(fault, timeout=5.0).raise_for_status()
    assert rolled.result == "rolled_back", rolled.reason
    back = marker(page, f"rolled back {SERVICE}")
    expect(back).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(back).to_have_class(re.compile(r"\brefused\b"))
    expect(back).to_have_attribute(
        "title",
        re.compile(rf"Warning RolledBack rollout/{SERVICE}: step 1 \(100%\): v2 error rate"),
    )
    expect(back).to_contain_text("v2 error rate")  # the words, not only the tooltip
    # the page's own requests that v2 answered 503 are the only errors it logged
    assert all("status of 503" in e for e in tab.console.errors), tab.console.errors
