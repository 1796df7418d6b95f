"""Which request headers travel with a request from one service to the next.

A mesh cannot propagate trace context or the canary flag for the application:
Envoy sees an inbound request and, later, an unrelated outbound one. The
application must copy these headers from the request it is serving onto every
call it makes (Istio docs, "Distributed Tracing: Trace context propagation").
The list lives here, once; both services and the tests import it.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Headers copied from the incoming request onto every backend call, in this order.
FORWARDED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "baggage",
    "x-canary",
)

#: Headers owned by a trace propagator: when the caller injects its own span
#: context, the incoming values are dropped so no stale parent id is sent on.
TRACE_CONTEXT_HEADERS: frozenset[str] = frozenset(
    {
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
    }
)

#: Never forwarded, whatever a caller passes in (RFC 9110 section 7.6.1, plus `host`).
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

_FORWARDED_SET = frozenset(FORWARDED_HEADERS) - HOP_BY_HOP


def pick_forwarded(
    headers: Mapping[str, str], *, drop_trace_context: bool = False
) -> dict[str, str]:
    """The subset of `headers` to send on a backend call.

    `headers` may have names in any case. With `drop_trace_context`, the headers
    a propagator will rewrite (traceparent, b3, x-b3-*) are left out.
    """
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _FORWARDED_SET and not (drop_trace_context and key in TRACE_CONTEXT_HEADERS):
            out[key] = value
    return out


def trace_id_from_headers(headers: Mapping[str, str]) -> str | None:
    """The trace id carried by W3C `traceparent` or B3 headers, without a tracer.

    Used for logs and the page when this process records no spans itself.
    """
    traceparent = headers.get("traceparent")
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
            return parts[1].lower()
    b3 = headers.get("b3")
    if b3 and "-" in b3:
        trace_id = b3.split("-", 1)[0]
        if len(trace_id) in (16, 32):
            return trace_id.lower().rjust(32, "0")
    b3_trace = headers.get("x-b3-traceid")
    if b3_trace and len(b3_trace) in (16, 32):
        return b3_trace.lower().rjust(32, "0")
    return None
