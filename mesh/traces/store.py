"""The last N traces in memory, newest first; a bounded number of spans per trace.

Spans arrive far more often than anyone reads them: under `mesh load`, Envoy and the
services report every request, and turning a protobuf span into a `Span` (its ~20 tags,
its ids) cost ~35 us, most of the receiver's CPU. So the receiver checks a report when
it arrives and answers at once, but keeps it as it came (`defer`) and reads it into the
store only when the store is read (issue 16: ~50 -> ~15 us per traced request). Reports
are read in the order they came, so the store is the same as if each had been read on
arrival. While nobody reads, the newest `pending_cap` spans wait; older reports go
(counted in `dropped_spans`): their traces could only have been among the newest
`max_traces` if a trace averaged more than PENDING_PER_TRACE spans.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from mesh.traces.model import Span, SpanFormatError

DEFAULT_MAX_TRACES = 500
MAX_SPANS_PER_TRACE = 1000
MAX_PROBE_TRACES = 50
#: spans kept unread per trace kept: a request through the gateway makes ~6
PENDING_PER_TRACE = 20


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
        self.pending_cap = max_traces * PENDING_PER_TRACE
        self._pending: deque[tuple[int, Callable[[], list[Span]]]] = deque()
        self._pending_spans = 0

    def defer(self, count: int, read: Callable[[], list[Span]]) -> None:
        """A checked report of COUNT spans that READ turns into Spans when the store is
        next read; the oldest unread reports go once more than `pending_cap` spans wait."""
        self._pending.append((count, read))
        self._pending_spans += count
        while self._pending_spans > self.pending_cap and len(self._pending) > 1:
            dropped, _ = self._pending.popleft()
            self._pending_spans -= dropped
            self.dropped_spans += dropped

    @property
    def pending_spans(self) -> int:
        """Spans received and not read into the store yet."""
        return self._pending_spans

    def _settle(self) -> None:
        """Read every deferred report into the store, oldest first."""
        while self._pending:
            count, read = self._pending.popleft()
            self._pending_spans -= count
            try:
                spans = read()
            except SpanFormatError:  # checked on arrival; a report that still fails goes
                self.dropped_spans += count
                continue
            self._add(spans)

    def add(self, spans: Iterable[Span]) -> None:
        """SPANS now, after any deferred reports (which came first)."""
        self._settle()
        self._add(spans)

    def _add(self, spans: Iterable[Span]) -> None:
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
        self._settle()
        spans = self._traces.get(trace_id)
        if spans is None:
            spans = self._probes.get(trace_id)
        return sorted(spans, key=lambda s: s.start_ns) if spans is not None else None

    def recent(self, limit: int, probes: bool = False) -> list[tuple[str, list[Span]]]:
        """Up to LIMIT traces, the most recently updated first; traces of nothing but
        probes and scrapes (/healthz, /readyz, /metrics) only with PROBES."""
        self._settle()
        newest = list(reversed(self._traces))
        if probes:
            last = {t: spans[-1].end_ns for t, spans in {**self._traces, **self._probes}.items()}
            newest = sorted(last, key=lambda t: last[t], reverse=True)
        return [(t, self.get(t) or []) for t in newest[:limit]]

    def __len__(self) -> int:
        self._settle()
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
