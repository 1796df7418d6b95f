"""The page's markup and static files, served by the frontend in-process (no browser)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from frontend.app import create_app
from frontend.errors import CAUSE_WORDS, failure
from frontend.page import STATIC_DIR, _json_block, render_page
from frontend.settings import FrontendSettings
from tests.support.html import element
from tests.support.procs import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
IDENTITY = {"version": "v1", "instance": "frontend-0"}


@pytest.fixture
async def app() -> AsyncIterator[FastAPI]:
    """The frontend with a backend URL where nothing listens (every backend call is refused)."""
    settings = FrontendSettings(
        instance="frontend-0", backend_url=f"http://127.0.0.1:{free_port()}"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://frontend") as c:
        yield c


def page(**overrides: object) -> str:
    args: dict[str, object] = {
        "frontend": IDENTITY,
        "data": {"tasks": [{"id": 1, "title": "a", "done": False}]},
        "backend": {"version": "v1", "instance": "backend-v1-0"},
        "failure": None,
        "request_id": "req-1",
        "trace_id": TRACE_ID,
    }
    return render_page(**{**args, **overrides})  # type: ignore[arg-type]


async def test_every_asset_the_page_names_is_served_as_it_is_on_disk(
    client: httpx.AsyncClient,
) -> None:
    names = re.findall(r'(?:src|href)="/static/([^"]+)"', page())
    assert sorted(names) == sorted(p.name for p in STATIC_DIR.iterdir()), names
    for name in names:
        r = await client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert r.content == (STATIC_DIR / name).read_bytes()
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert r.headers["content-type"].startswith(kind)
        again = await client.get(f"/static/{name}", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


async def test_an_unknown_static_name_is_a_json_404(client: httpx.AsyncClient) -> None:
    for path in ("/static/nope.js", "/static/..%2Fapp.py", "/static/"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "not_found"


def test_static_files_load_nothing_from_elsewhere() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://|@import|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name


def test_the_cause_words_reach_the_script_intact() -> None:
    block = re.search(r'<script type="application/json" id="cause-words">(.*?)</script>', page())
    assert block is not None
    assert json.loads(block.group(1)) == CAUSE_WORDS


def test_a_json_block_cannot_close_its_script_tag() -> None:
    hostile = {"a": "</script><script>alert(1)</script>", "b": "<!--"}
    html = _json_block("x", hostile)
    inner = html[html.index(">") + 1 : html.rindex("</script>")]
    assert "<" not in inner
    assert json.loads(inner) == hostile


def test_script_only_controls_are_hidden_in_the_first_paint() -> None:
    html = page()
    for element_id in ("add-form", "canary-section", "traffic", "degraded"):
        assert element(html, element_id).hidden, element_id


def test_a_failed_first_paint_says_why_and_who_failed() -> None:
    problem = failure(
        "no_healthy_upstream", "no healthy backend instance", backend={"version": None}
    )
    html = page(failure=problem, data=None, backend={})
    # the degraded part itself: every cause's words are in the JSON block in any case
    degraded = element(html, "degraded")
    assert not degraded.hidden
    assert f"{CAUSE_WORDS['no_healthy_upstream']}." in degraded.text
    assert "(HTTP 503, cause no_healthy_upstream)" in degraded.text
    assert element(html, "badge-who").text == "No backend answered"


async def test_replies_name_their_request_and_trace_ids(client: httpx.AsyncClient) -> None:
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    r = await client.get(
        "/api/tasks", headers={"x-request-id": "req-77", "traceparent": traceparent}
    )
    assert r.status_code == 502 and r.json()["cause"] == "refused"
    assert r.headers["x-request-id"] == r.json()["request_id"] == "req-77"
    assert r.headers["x-trace-id"] == r.json()["trace_id"] == TRACE_ID
