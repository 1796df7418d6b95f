from __future__ import annotations

from collections import Counter

import httpx
import pytest

from mesh import demos
from mesh.load.options import OptionError, build_options
from mesh.load.runner import Result
from tests.support.procs import Proc

BACKEND = "outbound|5000|v1|backend-service.default.svc.cluster.local"
V2 = "outbound|5000|v2|backend-service.default.svc.cluster.local"
ANY = "outbound|5000||backend-service.default.svc.cluster.local"

STATS = f"""\
cluster.{BACKEND}.upstream_rq_pending_overflow: 21
cluster.{BACKEND}.circuit_breakers.default.remaining_pending: 1
cluster.{BACKEND}.upstream_rq_time: P0(nan,1) P25(nan,2)
cluster.outbound|8000||frontend-service.default.svc.cluster.local.upstream_rq_pending_overflow: 3
server.live: 1
"""


def test_parse_cluster_stats_by_suffix() -> None:
    found = demos.parse_cluster_stats(STATS, (demos.PENDING_OVERFLOW, demos.REMAINING_PENDING))
    assert found[BACKEND] == {demos.PENDING_OVERFLOW: 21, demos.REMAINING_PENDING: 1}
    assert found["outbound|8000||frontend-service.default.svc.cluster.local"] == {
        demos.PENDING_OVERFLOW: 3
    }
    assert len(found) == 2


def test_parse_host_health() -> None:
    text = (
        f"{BACKEND}::default_priority::max_connections::1\n"
        f"{BACKEND}::127.0.0.1:5001::cx_active::0\n"
        f"{BACKEND}::127.0.0.1:5001::health_flags::/failed_outlier_check\n"
        f"{BACKEND}::127.0.0.1:5002::health_flags::healthy\n"
    )
    assert demos.parse_host_health(text) == {
        BACKEND: {"127.0.0.1:5001": "/failed_outlier_check", "127.0.0.1:5002": "healthy"}
    }


def test_each_cluster_line_shows_that_clusters_own_overflow_this_step() -> None:
    """Only v1 overflowed: v2's line says +0, v1's says +4 (not the step's total on both)."""
    overflow, remaining = demos.PENDING_OVERFLOW, demos.REMAINING_PENDING
    before = {BACKEND: {overflow: 2}, V2: {overflow: 5}}
    after = {BACKEND: {overflow: 6, remaining: 0}, V2: {overflow: 5, remaining: 1},
             ANY: {overflow: 1}}  # fmt: skip
    deltas = demos.overflow_deltas(before, after)
    assert deltas == {BACKEND: 4, V2: 0, ANY: 1}  # a cluster first seen now grew from 0
    options = build_options("http://127.0.0.1:5000/api/tasks", connections=3, requests=30)
    result = Result(options, status_counts=Counter({200: 26, 503: 4}), overloaded_503=4)
    step = demos.BreakerStep(3, result, after, deltas)
    assert step.overflow_delta == 5
    lines = demos.BreakerReport([step]).render().splitlines()
    assert f"      {BACKEND}: {overflow} 6 (+4 this step), remaining_pending 0" in lines
    assert f"      {V2}: {overflow} 5 (+0 this step), remaining_pending 1" in lines
    assert f"      {ANY}: {overflow} 1 (+1 this step), remaining_pending n/a" in "\n".join(lines)


def test_demos_refuse_remote_urls() -> None:
    with pytest.raises(OptionError, match="loopback"):
        demos.EnvoyAdmin("http://10.0.0.1:15000")
    with pytest.raises(OptionError, match="loopback"):
        demos.canary("http://example.com/api/tasks")


@pytest.mark.integration
def test_canary_split(standin: Proc) -> None:
    report = demos.canary(standin.url + "/api/tasks", requests=40, connections=2)
    assert dict(report.plain.versions) == {"v1": 40}
    assert dict(report.canary.versions) == {"v2": 40}
    text = report.render()
    assert "without x-canary" in text and "v2 100%" in text


@pytest.mark.integration
def test_circuit_breaker_steps_match_envoy_overflow(standin: Proc) -> None:
    report = demos.circuit_breaker(
        standin.url + "/breaker", standin.url, requests_per_connection=10
    )
    assert [s.connections for s in report.steps] == [1, 2, 3]
    one = report.steps[0]
    assert one.result.overloaded_503 == 0 and one.overflow_delta == 0
    for step in report.steps:
        assert step.result.total == 10 * step.connections
        assert step.overflow_delta == step.result.overloaded_503  # the stat counts the 503s
        assert step.overflow_deltas == {BACKEND: step.result.overloaded_503}
        assert set(step.stats) == {BACKEND}  # the frontend cluster is filtered out
        assert demos.REMAINING_PENDING in step.stats[BACKEND]
    assert report.steps[2].result.overloaded_503 > 0
    assert "remaining_pending" in report.render()


@pytest.mark.integration
def test_outlier_ejects_recovers_and_clears(standin: Proc) -> None:
    report = demos.outlier(
        standin.url + "/api/tasks",
        standin.url,
        standin.url,
        connections=2,
        window="1s",  # each window must get requests done on a loaded machine too
        return_wait_s=30,  # ends as soon as the stand-in reports no ejection
    )
    assert report.before.total > 0 and demos.success_rate(report.before) == 100.0
    assert report.faulted.status_counts[503] > 0
    assert report.max_ejections_active == 1
    assert report.health_while_ejected[BACKEND]["127.0.0.1:5001"] == "/failed_outlier_check"
    assert report.ejected.total > 0 and demos.success_rate(report.ejected) == 100.0
    assert report.ejections_after_clear == 0
    fault = httpx.get(standin.url + "/admin/fault", trust_env=False).json()
    assert fault == {"fault": None}  # the demo cleared the fault
    assert "ejections_active peaked at 1" in report.render()
