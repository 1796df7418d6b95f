"""The last N traces in memory, newest first; a bounded number of spans per trace."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from mesh.traces.model import Span

DEFAULT_MAX_TRACES = 500
MAX_SPANS_PER_TRACE = 1000


PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def is_probe(span: Span) -> bool:
    return span.attributes.get("http.route") in PROBE_ROUTES


class TraceStore:
    """Traces by id; adding a span to a trace makes it the newest. Not thread-safe (one
    event loop owns it)."""

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES) -> None:
        if max_traces < 1:
            raise ValueError("max_traces must be at least 1")
        self.max_traces = max_traces
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()
        self.dropped_spans = 0

    def add(self, spans: Iterable[Span]) -> None:
        for span in spans:
            trace = self._traces.get(span.trace_id)
            if trace is None:
                trace = self._traces[span.trace_id] = []
            self._traces.move_to_end(span.trace_id)
            if len(trace) >= MAX_SPANS_PER_TRACE:
                self.dropped_spans += 1
                continue
            trace.append(span)
        while len(self._traces) > self.max_traces:
            self._traces.popitem(last=False)

    def get(self, trace_id: str) -> list[Span] | None:
        spans = self._traces.get(trace_id)
        return sorted(spans, key=lambda s: s.start_ns) if spans is not None else None

    def recent(self, limit: int, probes: bool = False) -> list[tuple[str, list[Span]]]:
        """Up to LIMIT traces, the most recently updated first; traces of nothing but
        probes and scrapes (/healthz, /readyz, /metrics) only with PROBES."""
        out = []
        for trace_id in reversed(self._traces):
            if len(out) >= limit:
                break
            spans = self._traces[trace_id]
            if probes or not all(is_probe(s) for s in spans):
                out.append((trace_id, self.get(trace_id) or []))
        return out

    def __len__(self) -> int:
        return len(self._traces)


def summary(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """One line's worth of a trace: root, services, span count, duration, errors."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in ids]
    root = min(roots or spans, key=lambda s: s.start_ns)
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    return {
        "trace_id": trace_id,
        "root": {"service": root.service, "name": root.name},
        "services": list(dict.fromkeys(s.service for s in spans)),
        "span_count": len(spans),
        "start_ns": start,
        "duration_ms": round(max(0, end - start) / 1e6, 3),
        "errors": sum(1 for s in spans if s.status == "error"),
    }
