"""The server-rendered page: tasks, who answered, the ids to look up, or why it failed.

The first paint is complete HTML and works without JavaScript. `static/page.js`
then enhances it in place: add, complete and delete tasks, the canary switch,
and the live traffic panel. Everything is served by the frontend itself (no
CDN, no external fonts): the page must work behind a mesh with no egress.
Every value from a request or the backend is escaped.

The elements the script enhances are found by id; the controls that only work
with the script are rendered `hidden` and shown by it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from frontend.errors import CAUSE_WORDS, BackendFailure

STATIC_PREFIX = "/static"
STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    """A static file of the page, read once when the app is made."""

    body: bytes
    media_type: str
    etag: str


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """The page's static files by name; only these names are ever served (no path lookups)."""
    assets = {}
    for path in sorted(directory.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        assets[path.name] = Asset(body, media_type, etag)
    return assets


def _json_block(element_id: str, value: Any) -> str:
    """A JSON value for the script, safe inside HTML (no `</script>` can close it)."""
    text = json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _trace(trace_id: str | None, trace_view_url: str | None) -> str:
    """The trace id, a link to its view when a TRACE_VIEW_URL template is set."""
    code = f'<code id="badge-trace-id">{escape(trace_id or "none")}</code>'
    if not trace_id or not trace_view_url:
        return code
    href = trace_view_url.replace("{trace_id}", quote(trace_id, safe=""))
    return f'<a href="{escape(href)}">{code}</a>'


def _badge(
    backend: dict[str, str | None],
    request_id: str | None,
    trace_id: str | None,
    trace_view_url: str | None = None,
) -> str:
    version = backend.get("version")
    instance = backend.get("instance") or "unknown"
    who = (
        f'Answered by backend <strong id="badge-version">{escape(version)}</strong> '
        f'on instance <code id="badge-instance">{escape(instance)}</code>'
        if version
        else "No backend answered"
    )
    return (
        f'<div id="badge" class="who {escape(version or "none")}" role="status" '
        f'aria-live="polite" aria-atomic="true"><span id="badge-who">{who}</span>'
        f'<span class="meta ids">request id: <code id="badge-request-id">'
        f"{escape(request_id or 'none')}</code> &middot; trace id: "
        f"{_trace(trace_id, trace_view_url)}</span></div>"
    )


def _degraded(failure: BackendFailure | None) -> str:
    if failure is None:
        return (
            '<div id="degraded" class="degraded" role="alert" hidden>'
            '<strong>The task list is unavailable.</strong> <span id="degraded-words"></span>'
            '<br><span class="meta" id="degraded-detail"></span></div>'
        )
    return (
        '<div id="degraded" class="degraded" role="alert"><strong>The task list is unavailable.'
        f'</strong> <span id="degraded-words">{escape(failure.words)}.</span><br>'
        f'<span class="meta" id="degraded-detail">{escape(failure.message)}'
        f" (HTTP {failure.status}, cause <code>{escape(failure.cause)}</code>)</span></div>"
    )


def _task(task: dict[str, Any], served_by: str) -> str:
    """One task row; the script renders rows with the same markup plus their controls."""
    done = bool(task.get("done"))
    prio = task.get("priority")
    badge = (
        f'<span class="prio {escape(str(prio))}">priority {escape(str(prio))}</span>'
        if prio
        else ""
    )
    mark = "&#9745;" if done else "&#9744;"
    return (
        f'<li class="task {"done" if done else "open"}" data-id="{escape(str(task.get("id")))}">'
        f'<span class="mark" aria-hidden="true">{mark}</span> '
        f'<span class="t">{escape(str(task.get("title", "")))}</span>{badge}'
        f'<span class="served {escape(served_by)}">served by {escape(served_by)}</span></li>'
    )


def _tasks(data: dict[str, Any] | None, served_by: str) -> str:
    tasks = (data or {}).get("tasks") or []
    rows = "".join(_task(t, served_by) for t in tasks)
    return (
        f'<ul id="tasks">{rows}</ul><p id="no-tasks"{" hidden" if tasks else ""}>No tasks yet.</p>'
    )


FORM = """
<form id="add-form" class="add" hidden>
  <label for="new-title">New task</label>
  <input id="new-title" name="title" required maxlength="200" autocomplete="off">
  <span id="priority-field" hidden><label for="new-priority">Priority (v2)</label>
  <select id="new-priority" name="priority"><option value="low">low</option>
  <option value="normal" selected>normal</option><option value="high">high</option></select></span>
  <button type="submit">Add</button>
  <p id="form-error" class="form-error" role="alert" hidden></p>
</form>
"""

CANARY = """
<section id="canary-section" aria-labelledby="canary-h" hidden>
  <h2 id="canary-h">Canary</h2>
  <p><label class="switch"><input type="checkbox" role="switch" id="canary">
  Send this page's requests with <code>x-canary: true</code></label></p>
  <p class="meta">The frontend forwards the header; the backend VirtualService sends such
  requests to subset v2, all others by its ordinary route.</p>
</section>
"""

TRAFFIC = """
<section id="traffic" aria-labelledby="traffic-h" hidden>
  <h2 id="traffic-h">Live traffic</h2>
  <p class="meta">The page sends <code>GET /api/tasks</code> at a steady rate and counts, per
  second, who answered and why calls failed. It stops by itself after
  <span id="traffic-limit">60</span>&nbsp;s and whenever this tab is hidden.</p>
  <div class="controls">
    <label for="rate">Requests per second</label>
    <input id="rate" type="number" min="1" max="20" step="1" value="5">
    <button type="button" id="traffic-toggle" aria-pressed="false">Start traffic</button>
    <span id="traffic-status" role="status" aria-live="polite">Stopped.</span>
    <span id="traffic-clock" class="meta"></span>
  </div>
  <div class="chart">
    <canvas id="traffic-chart" width="640" height="160" role="img"
      aria-label="Share of replies per second: no traffic yet"></canvas>
    <ol id="traffic-markers" aria-label="Config changes and restarts on the chart"></ol>
  </div>
  <p id="markers-note" class="meta" hidden>Marks on the time axis come from the local
  mesh's events: <span class="key config">&#9670; config generation applied</span>,
  <span class="key refused">&#10005; generation refused</span>,
  <span class="key restart">&#8635; restart, exit or kill</span>. Hover one for what
  happened.</p>
  <p id="markers-problem" class="meta" role="status" hidden></p>
  <table id="traffic-legend">
    <caption>Replies by who answered and errors by cause</caption>
    <thead><tr><th scope="col">Series</th><th scope="col">Last second</th>
    <th scope="col">Share (last second)</th><th scope="col">Total</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
"""

ROLLOUT = """
<section id="rollout" aria-labelledby="rollout-h" hidden>
  <h2 id="rollout-h">Rollout</h2>
  <p id="rollout-plan" class="meta"></p>
  <p id="rollout-now" role="status" aria-live="polite"><span id="rollout-step"></span> \
&middot; weights: <span id="rollout-weights"></span></p>
  <p id="rollout-result" hidden><strong id="rollout-verdict"></strong> \
<span id="rollout-reason"></span></p>
  <table id="rollout-steps">
    <caption>Each step's interval, canary beside stable (success: replies that were not
    5xx; from Envoy's per-subset stats, as <code>mesh rollout</code> judged them)</caption>
    <colgroup span="2"></colgroup><colgroup span="3"></colgroup><colgroup span="3"></colgroup>
    <colgroup span="1"></colgroup>
    <thead>
      <tr><th scope="col" rowspan="2">Step</th><th scope="col" rowspan="2">Weights</th>
      <th scope="colgroup" colspan="3" id="rollout-canary">Canary</th>
      <th scope="colgroup" colspan="3" id="rollout-stable">Stable</th>
      <th scope="col" rowspan="2">Verdict</th></tr>
      <tr><th scope="col">Requests</th><th scope="col">Success</th><th scope="col">p99</th>
      <th scope="col">Requests</th><th scope="col">Success</th><th scope="col">p99</th></tr>
    </thead>
    <tbody></tbody>
  </table>
</section>
"""


def render_page(
    *,
    frontend: dict[str, str],
    data: dict[str, Any] | None,
    backend: dict[str, str | None],
    failure: BackendFailure | None,
    request_id: str | None,
    trace_id: str | None,
    trace_view_url: str | None = None,
) -> str:
    """The whole page. `trace_view_url` (with `{trace_id}`) makes trace ids links."""
    served_by = backend.get("version") or "unknown"
    body_attrs = f' data-trace-view="{escape(trace_view_url)}"' if trace_view_url else ""
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f'<link rel="stylesheet" href="{STATIC_PREFIX}/page.css">',
        f'<script src="{STATIC_PREFIX}/page.js" defer></script>',
        f"<title>taskmesh</title></head><body{body_attrs}>",
        "<header><h1>taskmesh</h1>",
        f'<p class="meta">frontend {escape(frontend["version"])} on '
        f"<code>{escape(frontend['instance'])}</code> &middot; JSON at "
        '<a href="/api/tasks">/api/tasks</a> &middot; <a href="/api/headers">/api/headers</a>'
        "</p></header><main>",
        '<section aria-labelledby="who-h"><h2 id="who-h" class="sr-only">Who answered</h2>',
        _badge(
            failure.backend if failure is not None else backend,
            request_id,
            trace_id,
            trace_view_url,
        ),
        _degraded(failure),
        "</section>",
        '<section id="tasks-section" aria-labelledby="tasks-h"><h2 id="tasks-h">Tasks</h2>',
        FORM,
        _tasks(data if failure is None else None, served_by),
        "<noscript><p class=meta>Adding, completing and deleting tasks, the canary switch and "
        "the live traffic and rollout panels need JavaScript.</p></noscript></section>",
        CANARY,
        TRAFFIC,
        ROLLOUT,
        "</main>",
        _json_block("cause-words", CAUSE_WORDS),
        "</body></html>",
    ]
    return "".join(parts)
