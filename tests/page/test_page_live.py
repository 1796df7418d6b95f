"""The page in headless Chromium against the real local mesh (weighted variant, real Envoy)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from frontend.errors import CAUSE_WORDS
from mesh.runner import LocalMesh
from tests.page.conftest import Tab, save_screenshot

pytestmark = pytest.mark.integration

MAX_RELOADS = 20  # a v2 answer every time, by the 10 % weight alone: 1e-20


def enhanced(page: Page, url: str) -> None:
    """Open the page and wait until the script has loaded the task list with its controls."""
    page.goto(url)
    expect(page.locator("#add-form")).to_be_visible()
    expect(page.locator("#badge-version")).not_to_be_empty()
    expect(page.locator("#tasks li .del").first).to_be_visible()


def legend_total(page: Page, key: str) -> int:
    cell = page.locator(f'#traffic-legend tr[data-key="{key}"] td[data-col="total"]')
    return int(cell.inner_text()) if cell.count() else 0


def wait_total(page: Page, key: str, at_least: int) -> None:
    page.wait_for_function(
        """([key, n]) => {
            const cell = document.querySelector(
                `#traffic-legend tr[data-key="${key}"] td[data-col="total"]`);
            return cell !== null && Number(cell.textContent) >= n;
        }""",
        arg=[key, at_least],
        timeout=60_000,
    )


def test_page_loads_with_the_ids_of_the_call_that_answered(mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    with page.expect_response(lambda r: r.url.endswith("/api/tasks")) as listing:
        enhanced(page, mesh.gateway_url)
    reply = listing.value
    expect(page.locator("#badge-version")).to_have_text(reply.headers["x-backend-version"])
    expect(page.locator("#badge-instance")).to_have_text(reply.headers["x-backend-instance"])
    expect(page.locator("#badge-request-id")).to_have_text(reply.headers["x-request-id"])
    trace_id = reply.headers["x-trace-id"]
    expect(page.locator("#badge-trace-id")).to_have_text(trace_id)
    link = page.locator("#badge a", has=page.locator("#badge-trace-id"))
    expect(link).to_have_attribute("href", f"{mesh.traces_url}/traces/{trace_id}")
    expect(page.locator("#degraded")).to_be_hidden()
    assert tab.console.errors == []


def test_first_paint_works_without_javascript(mesh: LocalMesh, tab_without_js: Tab) -> None:
    page = tab_without_js.page
    page.goto(mesh.gateway_url)
    tasks = httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10).json()["tasks"]
    expect(page.locator("#tasks li")).to_have_count(len(tasks))
    expect(page.locator("#badge-version")).not_to_be_empty()
    expect(page.locator("#add-form")).to_be_hidden()  # controls that need the script stay hidden
    expect(page.locator("#traffic")).to_be_hidden()


def test_add_complete_and_delete_a_task(mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    enhanced(page, mesh.gateway_url)
    title = f"page test {uuid.uuid4().hex[:8]}"
    page.get_by_label("New task").fill(title)
    page.get_by_label("New task").press("Enter")
    row = page.locator("#tasks li", has_text=title)
    expect(row).to_have_count(1)
    expect(row.locator(".served")).to_have_text(
        f"served by {page.locator('#badge-version').inner_text()}"
    )
    expect(page.get_by_label("New task")).to_have_value("")

    row.get_by_role("checkbox").check()
    expect(row).to_have_class("task done")
    stored = {
        t["title"]: t
        for t in httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10).json()["tasks"]
    }
    assert stored[title]["done"] is True

    row.get_by_role("button", name=f"Delete task: {title}").click()
    expect(page.locator("#tasks li", has_text=title)).to_have_count(0)
    titles = [
        t["title"] for t in httpx.get(f"{mesh.gateway_url}/api/tasks", timeout=10).json()["tasks"]
    ]
    assert title not in titles
    assert tab.console.errors == []


def test_canary_switch_toggles_with_space_and_flips_the_badge_to_v2(
    mesh: LocalMesh, tab: Tab
) -> None:
    page = tab.page
    enhanced(page, mesh.gateway_url)
    switch = page.get_by_role("switch", name="x-canary")
    expect(switch).not_to_be_checked()
    switch.focus()
    with page.expect_request(lambda r: r.url.endswith("/api/tasks")) as sent:
        page.keyboard.press("Space")
    assert sent.value.headers.get("x-canary") == "true"
    expect(switch).to_be_checked()
    expect(page.locator("#badge-version")).to_have_text("v2")
    expect(page.locator("#badge-instance")).to_have_text("backend-v2-0")

    # v2 shows priorities, and a task added under the canary keeps the one chosen
    title = f"canary task {uuid.uuid4().hex[:8]}"
    page.get_by_label("New task").fill(title)
    page.get_by_label("Priority (v2)").select_option("high")
    page.get_by_role("button", name="Add").click()
    row = page.locator("#tasks li", has_text=title)
    expect(row.locator(".prio")).to_have_text("priority high")
    expect(row.locator(".served")).to_have_text("served by v2")
    save_screenshot(page, "canary-on")
    row.get_by_role("button", name=f"Delete task: {title}").click()
    expect(page.locator("#tasks li", has_text=title)).to_have_count(0)

    # Off again: the header stops and the badge follows the version that answered.
    switch.focus()
    with page.expect_response(lambda r: r.url.endswith("/api/tasks")) as answered:
        page.keyboard.press("Space")
    expect(switch).not_to_be_checked()
    reply = answered.value
    assert_plain_listing(page, reply)
    # This mesh is the 90/10 variant: without the header, one call in ten is v2 by
    # weight. Reload (the switch stays off) until v1 answers, as a person would.
    for _ in range(MAX_RELOADS):
        if reply.headers["x-backend-version"] == "v1":
            break
        with page.expect_response(lambda r: r.url.endswith("/api/tasks")) as answered:
            page.reload()
        expect(switch).not_to_be_checked()
        reply = answered.value
        assert_plain_listing(page, reply)
    expect(page.locator("#badge-version")).to_have_text("v1")
    expect(page.locator("#priority-field")).to_be_hidden()
    assert tab.console.errors == []


def assert_plain_listing(page: Page, reply: Response) -> None:
    """The page's call went out without x-canary, and the badge shows who answered it."""
    sent = reply.request.all_headers()
    assert "x-canary" not in sent, sent
    expect(page.locator("#badge-version")).to_have_text(reply.headers["x-backend-version"])
    expect(page.locator("#badge-instance")).to_have_text(reply.headers["x-backend-instance"])


def test_traffic_rate_is_bounded(mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    enhanced(page, mesh.gateway_url)
    page.get_by_label("Requests per second").fill("50")
    page.get_by_role("button", name="Start traffic").click()
    expect(page.locator("#traffic-status")).to_contain_text("from 1 to 20")
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "false")


def test_traffic_stops_by_itself_at_the_time_limit(mesh: LocalMesh, tab: Tab) -> None:
    """The page's clock is Playwright's fake one: a minute passes without waiting a minute."""
    page = tab.page
    page.clock.install()
    enhanced(page, mesh.gateway_url)
    limit_s = int(page.locator("#traffic-limit").inner_text())
    page.get_by_label("Requests per second").fill("1")
    page.get_by_role("button", name="Start traffic").click()
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "true")
    page.clock.run_for((limit_s - 1) * 1000)
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "true")
    page.clock.run_for(2000)
    expect(page.locator("#traffic-status")).to_contain_text(f"the {limit_s} s limit")
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "false")


def test_traffic_panel_shows_the_weighted_split(mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    enhanced(page, mesh.gateway_url)
    page.get_by_label("Requests per second").fill("20")
    page.get_by_role("button", name="Start traffic").click()
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "true")
    wait_total(page, "all", 200)
    # hiding the tab stops the stream by itself
    page.evaluate(
        """() => {
            const hidden = {value: "hidden", configurable: true};
            Object.defineProperty(document, "visibilityState", hidden);
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    expect(page.locator("#traffic-status")).to_contain_text("tab was hidden")
    expect(page.locator("#traffic-toggle")).to_have_attribute("aria-pressed", "false")
    save_screenshot(page, "traffic-weighted")

    v1, v2 = legend_total(page, "version:v1"), legend_total(page, "version:v2")
    instances = {
        key: legend_total(page, f"instance:{key}")
        for key in ("backend-v1-0", "backend-v1-1", "backend-v2-0")
    }
    assert v1 == instances["backend-v1-0"] + instances["backend-v1-1"], instances
    assert v2 == instances["backend-v2-0"], instances
    assert all(instances.values()), instances
    # 90/10: at n >= 200 the binomial sd of the v2 share is ~2 %, so 2-25 % is far outside chance
    share = v2 / (v1 + v2)
    assert 0.02 <= share <= 0.25, (v1, v2)
    assert legend_total(page, "errors") == 0
    assert tab.console.errors == []


def test_traffic_panel_counts_injected_faults(mesh: LocalMesh, tab: Tab) -> None:
    page = tab.page
    enhanced(page, mesh.gateway_url)
    faulted = mesh.instance_url("backend-v1-0")
    httpx.put(
        f"{faulted}/admin/fault", json={"status": 503, "error_rate": 1.0}, timeout=5
    ).raise_for_status()
    try:
        page.get_by_label("Requests per second").fill("20")
        page.get_by_role("button", name="Start traffic").click()
        wait_total(page, "error:fault", 1)
        wait_total(page, "all", 100)
        page.get_by_role("button", name="Stop traffic").click()
    finally:
        httpx.delete(f"{faulted}/admin/fault", timeout=5).raise_for_status()
    expect(page.locator("#traffic-status")).to_contain_text("you pressed Stop")
    save_screenshot(page, "traffic-fault")
    assert legend_total(page, "errors") >= legend_total(page, "error:fault") > 0
    # the healthy replicas kept answering
    assert legend_total(page, "instance:backend-v1-1") > 0


def test_degraded_state_says_why(mesh: LocalMesh, tab: Tab) -> None:
    """v2 (one replica) faulted, canary on: the list call fails and the page says why."""
    page = tab.page
    enhanced(page, mesh.gateway_url)
    faulted = mesh.instance_url("backend-v2-0")
    httpx.put(
        f"{faulted}/admin/fault", json={"status": 503, "error_rate": 1.0}, timeout=5
    ).raise_for_status()
    try:
        with page.expect_response(lambda r: r.url.endswith("/api/tasks")) as listing:
            page.get_by_role("switch", name="x-canary").check()
        body = listing.value.json()
    finally:
        httpx.delete(f"{faulted}/admin/fault", timeout=5).raise_for_status()
    banner = page.locator("#degraded")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(CAUSE_WORDS[body["cause"]])
    expect(banner).to_contain_text(f"cause {body['cause']}")
    save_screenshot(page, "degraded")
