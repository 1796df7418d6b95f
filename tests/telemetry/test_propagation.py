from telemetry.propagation import (
    FORWARDED_HEADERS,
    HOP_BY_HOP,
    TRACE_CONTEXT_HEADERS,
    pick_forwarded,
    trace_id_from_headers,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_forwarded_headers_match_the_design_contract():
    assert FORWARDED_HEADERS == (
        "x-request-id", "traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
        "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "x-ot-span-context", "baggage",
        "x-canary",
    )  # fmt: skip
    assert not set(FORWARDED_HEADERS) & HOP_BY_HOP


def test_pick_forwarded_keeps_exactly_the_listed_headers_in_any_case():
    incoming = {name.upper(): f"value-{i}" for i, name in enumerate(FORWARDED_HEADERS)}
    incoming |= {"Host": "frontend", "Connection": "keep-alive", "Cookie": "s=1",
                 "Transfer-Encoding": "chunked", "Authorization": "Bearer x"}  # fmt: skip
    picked = pick_forwarded(incoming)
    assert set(picked) == set(FORWARDED_HEADERS)
    for i, name in enumerate(FORWARDED_HEADERS):
        assert picked[name] == f"value-{i}"


def test_pick_forwarded_can_leave_trace_context_to_the_propagator():
    incoming = {name: "v" for name in FORWARDED_HEADERS}
    picked = pick_forwarded(incoming, drop_trace_context=True)
    assert set(picked) == set(FORWARDED_HEADERS) - TRACE_CONTEXT_HEADERS
    assert {"x-request-id", "x-canary", "baggage"} <= set(picked)


def test_trace_id_from_w3c_and_b3_headers():
    assert trace_id_from_headers({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}) == TRACE_ID
    assert trace_id_from_headers({"b3": f"{TRACE_ID}-00f067aa0ba902b7-1"}) == TRACE_ID
    short = "a3ce929d0e0e4736"
    assert trace_id_from_headers({"x-b3-traceid": short}) == "0" * 16 + short


def test_trace_id_absent_or_invalid_is_none():
    assert trace_id_from_headers({}) is None
    assert trace_id_from_headers({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}) is None
    assert trace_id_from_headers({"traceparent": "garbage"}) is None
    assert trace_id_from_headers({"x-b3-traceid": "abc"}) is None
