"""The live traffic chart marks what the local mesh did: restarts and config generations.

Everything is real: a local mesh on a copy of k8s/ (real Envoy, real replicas and
kubelet), Chromium, and events made to happen for real (a replica killed with SIGKILL,
a generation applied, a broken one refused). Without a mesh (no MESH_EVENTS_URL, as in a
cluster) the page asks once, draws nothing and logs nothing.
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from mesh.runner import LocalMesh
from tests.page.conftest import ROOT, Tab, save_screenshot
from tests.support.mesh import new_mesh
from tests.support.procs import (
    Proc,
    free_port,
    running,
    start_backend,
    start_frontend,
    wait_http_ok,
)

pytestmark = pytest.mark.integration

WEIGHTED = ROOT / "k8s" / "variants" / "weighted"
EVENTS = "/api/mesh/events"
#: A marker comes from the page's next poll (about a second) after the event; a loaded
#: machine gets far more room than that.
MARKER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of k8s/ (base only) that this module's mesh runs and a test may break."""
    target = tmp_path_factory.mktemp("markers") / "k8s"
    shutil.copytree(ROOT / "k8s", target, ignore=shutil.ignore_patterns("variants", "jobs"))
    return target


@pytest.fixture(scope="module")
def events_mesh(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """The app of k8s/ on real Envoy, on free ports; it serves its events to the frontend."""
    with new_mesh(tree, tmp_path_factory.mktemp("markers-state")) as mesh:
        yield mesh


def start_traffic(page: Page, rate: int = 2) -> None:
    """Start the page's traffic and wait for its first events answer (enabled: true)."""
    page.get_by_label("Requests per second").fill(str(rate))
    with page.expect_response(lambda r: EVENTS in r.url, timeout=MARKER_TIMEOUT_MS) as answer:
        page.get_by_role("button", name="Start traffic").click()
    assert answer.value.status == 200
    assert answer.value.json()["enabled"] is True


def marker(page: Page, label: str) -> Locator:
    """The chart's marker whose visible label is exactly LABEL."""
    markers = page.get_by_role("list", name="Config changes and restarts on the chart")
    return markers.get_by_role("listitem").filter(
        has=page.locator(".label", has_text=re.compile(rf"^\W*{re.escape(label)}$"))
    )


def keep_running(page: Page) -> None:
    """Start a new run if this one reached the page's 60 s limit (a slow machine's restart)."""
    toggle = page.locator("#traffic-toggle")
    if toggle.get_attribute("aria-pressed") == "false":
        start_traffic(page)


def test_the_chart_marks_a_restart_a_new_generation_and_a_refused_one(
    events_mesh: LocalMesh, tab: Tab, tree: Path, tmp_path: Path
) -> None:
    page = tab.page
    page.goto(events_mesh.gateway_url)
    expect(page.locator("#traffic")).to_be_visible()
    start_traffic(page)
    expect(page.locator("#markers-note")).to_be_visible()
    # events from before the run (generation 1, the first starts) are not on its axis
    expect(page.locator("#traffic-markers li")).to_have_count(0)

    # kill -9 a backend replica; the kubelet restarts it
    pod = events_mesh.pod("backend-v1-0")
    assert pod.child is not None and pod.restarts == 0
    pod.child.signal(signal.SIGKILL)
    assert events_mesh.kubelet.wait_for(lambda: pod.restarts == 1 and pod.ready, timeout=60)
    restart = marker(page, "restart backend-v1-0")
    expect(restart).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(restart).to_have_class(re.compile(r"\brestart\b"))
    expect(restart).to_have_attribute(
        "title", re.compile(r"Restarted backend-v1-0: after .*SIGKILL.*\(restart 1, pid \d+\)")
    )
    # the text alternative: the same words are in the marker, not only in its tooltip
    expect(restart).to_contain_text("Restarted backend-v1-0: after")
    expect(marker(page, "exit backend-v1-0")).to_be_visible(timeout=MARKER_TIMEOUT_MS)

    # a config change: the weighted variant becomes the next generation
    keep_running(page)
    applied = events_mesh.apply(WEIGHTED)
    assert applied["result"] == "applied", applied
    number = applied["generation"]
    config = marker(page, f"gen {number}")
    expect(config).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(config).to_have_class(re.compile(r"\bconfig\b"))
    expect(config).to_have_attribute(
        "title", re.compile(rf"Normal Applied generation/{number}: .*from apply")
    )

    # a generation refused: a route to a subset no DestinationRule defines
    broken = tmp_path / "broken"
    shutil.copytree(tree, broken)
    vs = broken / "istio" / "virtualservice-backend.yaml"
    vs.write_text(vs.read_text().replace("subset: v1", "subset: v9"))
    keep_running(page)
    refused = events_mesh.apply(broken)
    assert refused["result"] == "refused", refused
    no = marker(page, f"refused gen {refused['generation']}")
    expect(no).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(no).to_have_class(re.compile(r"\brefused\b"))
    expect(no).to_have_attribute("title", re.compile(r"Warning Refused generation/\d+: .*v9"))

    save_screenshot(page, "page-markers")
    assert tab.console.errors == []


@pytest.fixture(scope="module")
def no_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc]]:
    """A backend and two frontends as plain processes, no mesh: one frontend without
    MESH_EVENTS_URL (a cluster), one whose MESH_EVENTS_URL has nothing listening."""
    tmp = tmp_path_factory.mktemp("no-mesh")
    logs = tmp / "logs"
    backend = start_backend("v1", tmp / "tasks.db", logs, "backend-v1-0")
    procs = {"backend": backend}
    with running(list(procs.values())):
        wait_http_ok(backend)
        for name, events_url in (("cluster", ""), ("lost", f"http://127.0.0.1:{free_port()}/")):
            procs[name] = start_frontend(
                backend.url, logs, f"frontend-{name}", MESH_EVENTS_URL=events_url
            )
        with running([procs["cluster"], procs["lost"]]):
            for proc in procs.values():
                wait_http_ok(proc)
            yield procs


def test_without_a_mesh_the_page_asks_once_and_draws_nothing(
    no_mesh: dict[str, Proc], tab: Tab
) -> None:
    page = tab.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if EVENTS in r.url else None)
    page.goto(no_mesh["cluster"].url)
    page.get_by_label("Requests per second").fill("4")
    with page.expect_response(lambda r: EVENTS in r.url) as answer:
        page.get_by_role("button", name="Start traffic").click()
    assert answer.value.json() == {"events": [], "enabled": False}
    # a few seconds of traffic, so that a poll would have come again by now
    page.wait_for_function(
        """() => {
            const row = document.querySelector('#traffic-legend tr[data-key="all"]');
            const cell = row && row.querySelector('td[data-col="total"]');
            return cell !== null && Number(cell.textContent) >= 12;
        }""",
        timeout=60_000,
    )
    assert len(asked) == 1, asked
    expect(page.locator("#traffic-markers li")).to_have_count(0)
    expect(page.locator("#markers-note")).to_be_hidden()
    expect(page.locator("#markers-problem")).to_be_hidden()
    assert tab.console.errors == []


def test_an_unreachable_mesh_api_says_so_and_the_traffic_goes_on(
    no_mesh: dict[str, Proc], tab: Tab
) -> None:
    page = tab.page
    page.goto(no_mesh["lost"].url)
    page.get_by_label("Requests per second").fill("2")
    page.get_by_role("button", name="Start traffic").click()
    problem = page.locator("#markers-problem")
    expect(problem).to_be_visible(timeout=MARKER_TIMEOUT_MS)
    expect(problem).to_contain_text("the mesh's events are unavailable")
    expect(problem).to_contain_text("cannot connect to http://127.0.0.1:")
    expect(page.locator("#traffic-markers li")).to_have_count(0)
    expect(page.locator('#traffic-legend tr[data-key="version:v1"]')).to_be_visible()
    # the browser logs each failed call (503) itself; the page's script throws nothing
    assert all("503" in e for e in tab.console.errors), tab.console.errors


def test_without_javascript_the_page_lists_tasks_and_no_chart(
    no_mesh: dict[str, Proc], tab_without_js: Tab
) -> None:
    page = tab_without_js.page
    page.goto(no_mesh["cluster"].url)
    expect(page.locator("#tasks li").first).to_be_visible()
    expect(page.locator("#traffic")).to_be_hidden()
    expect(page.locator("#traffic-markers")).to_be_hidden()
