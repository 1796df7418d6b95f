"""The server-rendered page: tasks, who answered, the ids to look up, or why it failed.

Plain HTML with inline CSS, no external assets: it must render behind a mesh
with no egress. Every value from a request or the backend is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from frontend.errors import BackendFailure

STYLE = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .meta{font-size:.85rem;color:#555} code{background:#f2f2f2;padding:0 .2rem}
.who{padding:.6rem .8rem;border-radius:.4rem;background:#e8f4ea;border:1px solid #9c9}
.who.v2{background:#e8eefa;border-color:#99c} .degraded{background:#fbeaea;border:1px solid #c99;
padding:.6rem .8rem;border-radius:.4rem} ul{padding-left:1.2rem}
li.done span.t{text-decoration:line-through;color:#777}
.prio{font-size:.75rem;padding:0 .3rem;border-radius:.2rem;margin-left:.4rem;background:#eee}
.prio.high{background:#f6d0d0} .prio.low{background:#e4e4e4}
"""


def _ids(request_id: str | None, trace_id: str | None) -> str:
    trace = (
        f"<code>{escape(trace_id)}</code>"
        if trace_id
        else "none (no trace headers came in and this service records no spans)"
    )
    return (
        f'<p class="meta">request id: <code>{escape(request_id or "none")}</code>'
        f" &middot; trace id: {trace}</p>"
    )


def _task(task: dict[str, Any]) -> str:
    done = bool(task.get("done"))
    prio = task.get("priority")
    badge = f'<span class="prio {escape(str(prio))}">{escape(str(prio))}</span>' if prio else ""
    mark = "&#9745;" if done else "&#9744;"
    return (
        f'<li class="{"done" if done else "open"}">{mark} '
        f'<span class="t">{escape(str(task.get("title", "")))}</span>{badge}</li>'
    )


def render_page(
    *,
    frontend: dict[str, str],
    data: dict[str, Any] | None,
    backend: dict[str, str | None],
    failure: BackendFailure | None,
    request_id: str | None,
    trace_id: str | None,
) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>taskmesh</title><style>{STYLE}</style></head><body>",
        "<h1>taskmesh</h1>",
    ]
    if failure is not None:
        parts.append(
            '<div class="degraded" role="alert"><strong>The task list is unavailable.</strong> '
            f"{escape(failure.words)}.<br><span class=meta>{escape(failure.message)}"
            f" (HTTP {failure.status}, cause <code>{escape(failure.cause)}</code>)</span></div>"
        )
    else:
        version = backend.get("version") or "unknown"
        instance = backend.get("instance") or "unknown"
        tasks = (data or {}).get("tasks") or []
        parts.append(
            f'<p class="who {escape(version)}">Answered by backend <strong>{escape(version)}'
            f"</strong> on instance <code>{escape(instance)}</code></p>"
        )
        if tasks:
            parts.append("<ul>" + "".join(_task(t) for t in tasks) + "</ul>")
        else:
            parts.append("<p>No tasks yet.</p>")
    parts.append(_ids(request_id, trace_id))
    parts.append(
        f'<p class="meta">frontend {escape(frontend["version"])} on '
        f"<code>{escape(frontend['instance'])}</code> &middot; JSON at "
        '<a href="/api/tasks">/api/tasks</a> &middot; <a href="/api/headers">/api/headers</a></p>'
    )
    parts.append("</body></html>")
    return "".join(parts)
