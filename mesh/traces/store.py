"""The last N traces in memory, newest first; a bounded number of spans per trace."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from mesh.traces.model import Span

DEFAULT_MAX_TRACES = 500
MAX_SPANS_PER_TRACE = 1000
MAX_PROBE_TRACES = 50


PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def is_probe(span: Span) -> bool:
    return span.attributes.get("http.route") in PROBE_ROUTES


class TraceStore:
    """Traces by id; adding a span to a trace makes it the newest. Not thread-safe (one
    event loop owns it).

    Probes and scrapes (Envoy's health checks hit every backend every few seconds) would
    push real requests out of the last N within minutes, so a trace whose spans are all
    probes is kept in a small ring of its own; a later non-probe span moves it over.
    """

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES) -> None:
        if max_traces < 1:
            raise ValueError("max_traces must be at least 1")
        self.max_traces = max_traces
        self.max_probe_traces = max(1, min(max_traces, MAX_PROBE_TRACES))
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()
        self._probes: OrderedDict[str, list[Span]] = OrderedDict()
        self.dropped_spans = 0

    def add(self, spans: Iterable[Span]) -> None:
        for span in spans:
            trace_id = span.trace_id
            if trace_id in self._traces:
                ring = self._traces
            elif is_probe(span):
                ring = self._probes
            else:  # the first real span: the trace moves to the main ring
                ring = self._traces
                ring[trace_id] = self._probes.pop(trace_id, [])
            trace = ring.setdefault(trace_id, [])
            ring.move_to_end(trace_id)
            if len(trace) >= MAX_SPANS_PER_TRACE:
                self.dropped_spans += 1
                continue
            trace.append(span)
        for ring, cap in ((self._traces, self.max_traces), (self._probes, self.max_probe_traces)):
            while len(ring) > cap:
                ring.popitem(last=False)

    def get(self, trace_id: str) -> list[Span] | None:
        spans = self._traces.get(trace_id)
        if spans is None:
            spans = self._probes.get(trace_id)
        return sorted(spans, key=lambda s: s.start_ns) if spans is not None else None

    def recent(self, limit: int, probes: bool = False) -> list[tuple[str, list[Span]]]:
        """Up to LIMIT traces, the most recently updated first; traces of nothing but
        probes and scrapes (/healthz, /readyz, /metrics) only with PROBES."""
        newest = list(reversed(self._traces))
        if probes:
            last = {t: spans[-1].end_ns for t, spans in {**self._traces, **self._probes}.items()}
            newest = sorted(last, key=lambda t: last[t], reverse=True)
        return [(t, self.get(t) or []) for t in newest[:limit]]

    def __len__(self) -> int:
        return len(self._traces) + len(self._probes)


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
