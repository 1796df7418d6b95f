"""Headless Chromium (Debian's, driven by Playwright) against real processes on loopback.

Never `playwright install`: the browser is /usr/bin/chromium from apt. Every page
gets its console errors collected and a screenshot saved under test-artifacts/page/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from mesh.runner import LocalMesh
from tests.support.mesh import new_mesh
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "page"
CHROMIUM = Path("/usr/bin/chromium")
WEIGHTED = ROOT / "k8s" / "variants" / "weighted"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # no DNS lookups at all: only loopback is reachable (reference/tooling.md section 7)
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


# Module scope, not session: the sync API keeps an event loop running in this thread
# while it is started, and pytest-asyncio cannot run async tests beside it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the page tests need Debian's chromium "
            "(apt-get install -y chromium); never `playwright install`",
            pytrace=False,
        )
    # DOM waits get room for a loaded 2-core machine (they end as soon as the DOM is there)
    expect.set_options(timeout=20_000)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Console:
    """What the page said on its console, and the script errors it threw."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")


@dataclass
class Tab:
    page: Page
    console: Console


def _open(
    browser: Browser, request: pytest.FixtureRequest, **context_args: object
) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1000, "height": 900}, **context_args)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    try:
        yield Tab(page, console)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            context.close()


@pytest.fixture
def tab(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A fresh browser context (no stored canary state) and its page."""
    yield from _open(browser, request)


@pytest.fixture
def tab_without_js(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tab]:
    yield from _open(browser, request, java_script_enabled=False)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """The weighted variant (90/10, x-canary -> v2) on real Envoy, on free ports, traced."""
    running = new_mesh(WEIGHTED, tmp_path_factory.mktemp("page-mesh"), traces_port=free_port())
    running.__enter__()
    try:
        yield running
    finally:
        running.stop()


def save_screenshot(page: Page, name: str) -> Path:
    """A screenshot under test-artifacts/page/ (the README's comes from one of these)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
