from __future__ import annotations

import io
import json
import random
import statistics
from collections import Counter

import pytest

from mesh.load.options import build_options
from mesh.load.progress import ProgressBar, bar_line
from mesh.load.report import latency_summary, percentile, render_json, render_text, to_dict
from mesh.load.runner import RateLimiter, Result


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_percentile_matches_statistics_inclusive(size: int) -> None:
    rng = random.Random(size)
    data = [rng.uniform(0, 50) for _ in range(size)]
    if size == 1:
        assert percentile(data, 99) == data[0]
        return
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    for q in (1, 50, 90, 99):
        assert percentile(data, q) == pytest.approx(cuts[q - 1])
    assert percentile(data, 0) == min(data)
    assert percentile(data, 100) == max(data)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_is_ordered() -> None:
    rng = random.Random(7)
    s = latency_summary([rng.expovariate(1.0) for _ in range(500)])
    assert s is not None
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert latency_summary([]) is None


def _result() -> Result:
    opts = build_options("http://127.0.0.1:8080/", connections=2, requests=10)
    r = Result(options=opts, duration_s=2.0, sockets_used=2)
    r.status_counts = Counter({200: 6, 503: 3})
    r.errors = Counter({"connection_refused": 1})
    r.overloaded_503 = 2
    r.versions = Counter({"v1": 4, "v2": 2})
    r.instances = Counter({"backend-v1-0": 3, "backend-v1-1": 1, "backend-v2-0": 2})
    r.latencies_ms.extend(float(i) for i in range(1, 10))
    return r


def test_json_report_counts_and_shares() -> None:
    r = _result()
    d = json.loads(render_json(r))
    assert d == to_dict(r)
    assert d["requests"] == 10 and d["responses"] == 9 and d["error_count"] == 1
    assert d["status_codes"]["503"] == {"count": 3, "percent": 30.0}
    assert d["errors"]["connection_refused"]["count"] == 1
    assert d["versions"]["v1"]["percent"] == pytest.approx(100 * 4 / 6, abs=0.01)
    assert d["instances"]["backend-v2-0"]["percent"] == pytest.approx(100 * 2 / 6, abs=0.01)
    assert d["overloaded_503"] == 2 and d["sockets_used"] == 2
    assert d["rate_rps"] == 5.0
    assert d["latency_ms"]["max"] == 9.0


def test_text_report_shows_every_part() -> None:
    text = render_text(_result())
    assert "Code 200 :       6 ( 60.0 %)" in text
    assert "2 with x-envoy-overloaded" in text
    assert "Error connection_refused : 1" in text
    assert "backend-v1-1" in text and "v2" in text
    assert "2 sockets used" in text
    assert "p99" in text


def test_rate_limiter_spaces_slots() -> None:
    now = [100.0]
    limiter = RateLimiter(10.0, clock=lambda: now[0])
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    now[0] = 200.0  # idle for long: no burst credit builds up beyond one slot
    assert [limiter.reserve() for _ in range(2)] == pytest.approx([0.0, 0.1])
    assert RateLimiter(0).reserve() == 0.0


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    opts = build_options("http://127.0.0.1:8080/", requests=100)
    quiet = io.StringIO()
    ProgressBar(opts, quiet)(50, 1.0)
    assert quiet.getvalue() == ""
    tty = _Tty()
    bar = ProgressBar(opts, tty)
    bar(50, 1.0)
    assert "50/100 req" in tty.getvalue() and "#" * 15 + "." * 15 in tty.getvalue()
    bar.clear()
    assert tty.getvalue().endswith("\r\x1b[K")


def test_progress_by_time_for_duration_runs() -> None:
    opts = build_options("http://127.0.0.1:8080/", duration="10s")
    assert "#" * 3 + "." * 27 in bar_line(opts, 5, 1.0)
