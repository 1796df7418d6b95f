"""A trace as a tree: parent links from the spans, as text (`mesh traces`) or HTML (the view).

A span whose parent is not in the trace (the caller's own span, or one not received yet)
is shown as a root, so a broken chain is visible rather than hidden.
"""

from __future__ import annotations

from html import escape

from mesh.traces.model import Span


def tree(spans: list[Span]) -> list[tuple[int, Span]]:
    """(depth, span) in display order: children under their parent, by start time."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[tuple[int, Span]] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            if span.span_id in seen:  # a span listed twice, or a cycle: show it once
                continue
            seen.add(span.span_id)
            out.append((depth, span))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    out.extend((0, s) for s in spans if s.span_id not in seen)
    return out


def _status(span: Span) -> str:
    code = span.attributes.get("http.response.status_code") or span.attributes.get(
        "http.status_code"
    )
    flags = span.attributes.get("response_flags", "-")
    text = span.status if not code else f"{span.status} {code}"
    return text if flags in ("-", "") else f"{text} {flags}"


def _who(span: Span) -> str:
    who = span.service
    if span.version:
        who += f" {span.version}" if span.source == "otlp" else f" -> {span.version}"
    if span.instance and span.source == "otlp":
        who += f" ({span.instance})"
    return who


def text(trace_id: str, spans: list[Span]) -> str:
    """The trace as an indented tree, one span a line."""
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    lines = [f"trace {trace_id}  {len(spans)} spans  {(end - start) / 1e6:.1f} ms"]
    for depth, span in tree(spans):
        offset = (span.start_ns - start) / 1e6
        lines.append(
            f"  {'  ' * depth}{_who(span)}  {span.kind} {span.name!r}  "
            f"{span.duration_ms:.1f} ms (+{offset:.1f})  {_status(span)}"
        )
    return "\n".join(lines)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left}"
    "tr.error td{color:#a00}code{background:#f2f2f2}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def html_trace(trace_id: str, spans: list[Span]) -> str:
    start = min(s.start_ns for s in spans)
    rows = []
    for depth, span in tree(spans):
        cls = ' class="error"' if span.status == "error" else ""
        pad = f"padding-left:{depth * 1.2 + 0.6:.1f}rem"
        rows.append(
            f"<tr{cls}><td style={pad}>{escape(_who(span))}</td><td>{escape(span.kind)}</td>"
            f"<td><code>{escape(span.name)}</code></td><td>{span.duration_ms:.1f} ms</td>"
            f"<td>+{(span.start_ns - start) / 1e6:.1f} ms</td><td>{escape(_status(span))}</td></tr>"
        )
    body = (
        f"<h1>trace <code>{escape(trace_id)}</code></h1><p><a href='/'>all traces</a></p>"
        "<table><tr><th>service</th><th>kind</th><th>span</th><th>duration</th><th>start</th>"
        f"<th>status</th></tr>{''.join(rows)}</table>"
    )
    return _page(f"trace {trace_id}", body)


def html_index(summaries: list[dict[str, object]]) -> str:
    rows = "".join(
        f"<tr><td><a href='/traces/{escape(str(s['trace_id']))}'><code>"
        f"{escape(str(s['trace_id']))}</code></a></td><td>{escape(str(s['root']))}</td>"
        f"<td>{s['span_count']}</td><td>{s['duration_ms']} ms</td><td>{s['errors']}</td></tr>"
        for s in summaries
    )
    body = (
        "<h1>recent traces</h1><table><tr><th>trace</th><th>root</th><th>spans</th>"
        f"<th>duration</th><th>errors</th></tr>{rows}</table>"
    )
    return _page("traces", body)
