"""The page's rollout panel: the current step and weights, then each step's canary and
stable numbers side by side, and the result. Everything is real: a `mesh up` process on
a copy of k8s/ (real Envoy), Chromium, and `mesh rollout` run as a command with its own
load (2 s intervals): a healthy v2 promoted, then v2 answering 503s rolled back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.loop.support import copy_k8s
from tests.page.conftest import Tab
from tests.page.test_page_markers_live import MARKER_TIMEOUT_MS, keep_running, start_traffic
from tests.rollout.support import ROLLOUT_TIMEOUT_S, Mesh
from tests.support.mesh_up import mesh_up

pytestmark = pytest.mark.integration

SERVICE = "backend-service"
FAST = ("--interval", "2s", "--load", "40", "--min-requests", "5")
#: a step lasts its 2 s interval plus Envoy's stats flush (at most 5 s): room for a
#: loaded machine on top of the page's next poll
PANEL_TIMEOUT_MS = MARKER_TIMEOUT_MS * 2


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("rollout-panel")
    with mesh_up(copy_k8s(work), work) as running:
        yield Mesh(running)


def cell(row: Locator, column: str) -> Locator:
    return row.locator(f'[data-col="{column}"]')


def step_row(page: Page, number: int) -> Locator:
    return page.locator(f'#rollout-steps tbody tr[data-step="{number}"]')


def test_the_panel_shows_each_step_side_by_side_and_the_result(up: Mesh, tab: Tab) -> None:
    page = tab.page
    page.goto(f"http://127.0.0.1:{up.up.gateway_port}")
    panel = page.get_by_role("region", name="Rollout")
    start_traffic(page)
    expect(page.locator("#traffic-status")).to_contain_text("Sending")
    expect(page.locator("#rollout")).to_be_hidden()  # no rollout event seen yet

    rollout = subprocess.Popen(
        up.argv(SERVICE, "--to", "v2", "--steps", "50,100", *FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the current step and its weights while it runs (step 2 lasts seconds)
        status = panel.get_by_role("status")
        expect(status).to_contain_text("step 2 of 2 in progress", timeout=PANEL_TIMEOUT_MS)
        expect(status).to_contain_text("weights: v1 0%, v2 100%")
        out, err = rollout.communicate(timeout=ROLLOUT_TIMEOUT_S)
    finally:
        if rollout.poll() is None:
            rollout.kill()
    assert rollout.returncode == 0, out + err

    expect(panel).to_be_visible()
    expect(page.locator("#rollout-plan")).to_contain_text(
        "backend-service: v1 \u2192 v2 in steps of 50, 100% every 2 s"
    )
    table = panel.get_by_role("table")
    expect(table.get_by_role("columnheader", name="Canary v2")).to_be_visible()
    expect(table.get_by_role("columnheader", name="Stable v1")).to_be_visible()
    result = page.locator("#rollout-result")
    expect(result).to_have_text(
        re.compile(r"^\u2714 Promoted: v2 passed every step; it receives 100%"),
        timeout=PANEL_TIMEOUT_MS,
    )
    expect(status).to_have_text(re.compile(r"^promoted · weights: v1 0%, v2 100%"))
    expect(page.locator("#rollout-steps tbody tr")).to_have_count(2)
    first, last = step_row(page, 1), step_row(page, 2)
    expect(cell(first, "step")).to_have_text("1/2")
    expect(cell(first, "weights")).to_have_text("v1 50%, v2 50%")
    for side in ("canary", "stable"):  # both subsets answered in the 50/50 step
        expect(cell(first, f"{side}-requests")).to_have_text(re.compile(r"^[1-9]\d*$"))
        expect(cell(first, f"{side}-success")).to_have_text("100.0%")
        expect(cell(first, f"{side}-p99")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(cell(first, "verdict")).to_have_text("\u2714 passed")
    expect(cell(last, "weights")).to_have_text("v1 0%, v2 100%")
    expect(cell(last, "stable-requests")).to_have_text("0")
    expect(cell(last, "stable-success")).to_have_text("\u2013")  # no requests: no rate
    expect(cell(last, "verdict")).to_have_text("\u2714 passed")

    # then a v2 answering 30% 503s: one failed step, rolled back to what the files say
    keep_running(page)
    reset = up.rollout(SERVICE, "--reset")
    assert reset.returncode == 0, reset.stderr
    up.fault("--status", "503", "--error-rate", "0.3")
    try:
        rolled = up.rollout(SERVICE, "--to", "v2", "--steps", "50,100", *FAST)
    finally:
        up.fault("--clear")
    assert rolled.returncode == 1, rolled.stdout + rolled.stderr
    expect(result).to_have_text(
        re.compile(r"^\u21b6 Rolled back: step 1 \(50%\): v2 error rate [\d.]+% > 1%$"),
        timeout=PANEL_TIMEOUT_MS,
    )
    expect(status).to_have_text(re.compile(r"^rolled back · weights: v1 100%$"))
    expect(page.locator("#rollout-steps tbody tr")).to_have_count(1)  # a new rollout's rows
    failed = step_row(page, 1)
    expect(cell(failed, "canary-success")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(cell(failed, "canary-success")).not_to_have_text("100.0%")
    expect(cell(failed, "verdict")).to_have_text(re.compile(r"^\u2715 failed: v2 error rate"))
    # the page's own requests that v2 answered 503 are the only errors it logged
    assert all("status of 503" in e for e in tab.console.errors), tab.console.errors


def test_without_javascript_there_is_no_panel(up: Mesh, tab_without_js: Tab) -> None:
    page = tab_without_js.page
    page.goto(f"http://127.0.0.1:{up.up.gateway_port}")
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    expect(page.locator("#rollout")).to_be_hidden()
    expect(page.get_by_role("region", name="Rollout")).to_have_count(0)
