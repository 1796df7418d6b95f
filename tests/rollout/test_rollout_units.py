"""The parts of `mesh rollout` that need no mesh: the judge, the histogram delta math,
Envoy's stats parsed, the input checks and the lock of one rollout per mesh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.cli import CliError
from mesh.rollout.judge import SubsetMetrics, Thresholds, judge
from mesh.rollout.metrics import (
    SubsetTotals,
    bins_delta,
    interval,
    merged,
    parse_stats,
    quantile,
)
from mesh.rollout.plan import Plan, RolloutLock, parse_duration, parse_steps, resolve

LIMITS = Thresholds(max_error_rate=1.0, max_p99_ms=500.0, min_requests=20)
V2 = "cluster.outbound|5000|v2|backend-service.default.svc.cluster.local"
OTHER = "cluster.outbound|5000|v2|other.default.svc.cluster.local"
ENVOY = "http://127.0.0.1:1/"  # an Envoy admin: readings are kept per Envoy


# --------------------------------------------------------------------------- the judge


def test_a_canary_within_every_threshold_passes() -> None:
    assert judge("v2", SubsetMetrics(100, 1, 500.0), LIMITS) is None  # limits are inclusive


def test_an_error_rate_over_the_limit_fails_with_the_rate_in_one_line() -> None:
    reason = judge("v2", SubsetMetrics(140, 44, 12.0), LIMITS)
    assert reason == "v2 error rate 31.4% > 1%"


def test_a_p99_over_the_limit_fails() -> None:
    assert judge("v2", SubsetMetrics(50, 0, 812.4), LIMITS) == "v2 p99 812ms > 500ms"


def test_fewer_requests_than_the_minimum_is_not_enough_traffic_even_when_healthy() -> None:
    reason = judge("v2", SubsetMetrics(19, 0, 5.0), LIMITS)
    assert reason == "not enough traffic: v2 got 19 requests < 20"


def test_no_latency_sample_fails_as_a_metric_without_data_does_in_flagger() -> None:
    reason = judge("v2", SubsetMetrics(30, 0, None), LIMITS)
    assert reason is not None and reason.startswith("v2 p99 unknown")


def test_error_rate_is_a_percent_and_zero_without_requests() -> None:
    assert SubsetMetrics(8, 2, None).error_rate == 25.0
    assert SubsetMetrics(0, 0, None).error_rate == 0.0
    assert SubsetMetrics(3, 1, 9.04).to_dict() == {
        "requests": 3,
        "error_rate": 33.33,
        "p99_ms": 9.0,
    }


# --------------------------------------------------------------------------- histogram math


def test_bins_delta_keeps_only_the_samples_recorded_between_two_reads() -> None:
    before = {(1.0, 0.1): 5, (2.0, 0.1): 3}
    after = {(1.0, 0.1): 9, (2.0, 0.1): 3, (800.0, 10.0): 2}
    assert bins_delta(before, after) == {(1.0, 0.1): 4, (800.0, 10.0): 2}


def test_quantile_interpolates_within_its_bin() -> None:
    bins = {(10.0, 1.0): 98, (800.0, 10.0): 2}
    assert quantile(bins, 0.5) == pytest.approx(10.0 + 1.0 * 50 / 98)
    # rank 99 is the first of the two slow samples: half way into their bin
    assert quantile(bins, 0.99) == pytest.approx(805.0)
    assert quantile({}, 0.99) is None


def test_an_interval_p99_ignores_the_slow_requests_of_an_earlier_interval() -> None:
    before = {
        "v2": SubsetTotals({"upstream_rq_total": 100, "upstream_rq_5xx": 0}, {(800.0, 10.0): 100})
    }
    after = {
        "v2": SubsetTotals(
            {"upstream_rq_total": 150, "upstream_rq_5xx": 5}, {(800.0, 10.0): 100, (3.0, 0.1): 50}
        )
    }
    m = interval({ENVOY: before}, {ENVOY: after}, "v2")
    assert (m.requests, m.errors) == (50, 5)
    assert m.p99_ms is not None and 3.0 <= m.p99_ms <= 3.1  # the totals' p99 is 800+


def test_no_requests_in_an_interval_reports_no_latency() -> None:
    totals = {"v2": SubsetTotals({"upstream_rq_total": 7}, {(3.0, 0.1): 7})}
    assert interval({ENVOY: totals}, {ENVOY: totals}, "v2") == SubsetMetrics(0, 0, None)


def _v2(total: int, errors: int, bins: dict[tuple[float, float], int]) -> dict[str, SubsetTotals]:
    return {"v2": SubsetTotals({"upstream_rq_total": total, "upstream_rq_5xx": errors}, bins)}


def test_an_interval_sums_each_envoys_own_difference_as_sidecars_come_and_go() -> None:
    slow, fast = (800.0, 10.0), (3.0, 0.1)
    before = {
        ENVOY: _v2(100, 0, {slow: 100}),
        "http://127.0.0.1:2/": _v2(50, 1, {fast: 50}),  # restarts during the interval
        "http://127.0.0.1:3/": _v2(70, 0, {fast: 70}),  # stops during it, last read at 80
    }
    after = {
        ENVOY: _v2(110, 2, {slow: 100, fast: 10}),  # 10 requests, 2 errors
        "http://127.0.0.1:2/": _v2(4, 1, {fast: 4}),  # counters reset: 4 since its restart
        "http://127.0.0.1:3/": _v2(80, 0, {fast: 80}),  # what it counted until last read
        "http://127.0.0.1:4/": _v2(6, 3, {fast: 6}),  # a new replica's sidecar: all of it
    }
    m = interval(before, after, "v2")
    assert (m.requests, m.errors) == (10 + 4 + 10 + 6, 2 + 1 + 0 + 3)
    assert m.p99_ms is not None and 3.0 <= m.p99_ms <= 3.1  # none of the earlier slow ones
    # a plain sum over the Envoys would have lost the restart's requests: 200 - 270 < 0
    assert interval(before, {ENVOY: after[ENVOY]}, "v2").requests == 10


def test_a_histogram_that_went_down_is_a_restart_too() -> None:
    fast = (3.0, 0.1)
    before = {ENVOY: _v2(5, 0, {fast: 5})}
    after = {ENVOY: _v2(9, 0, {fast: 2})}  # restarted, 9 counted, 2 flushed so far
    assert interval(before, after, "v2").requests == 9


def test_a_counter_that_went_down_is_a_restart_before_any_histogram_flush() -> None:
    before = {ENVOY: _v2(50, 3, {})}
    after = {ENVOY: _v2(7, 1, {})}  # restarted; Envoy has not flushed a histogram yet
    assert (interval(before, after, "v2").requests, interval(before, after, "v2").errors) == (7, 1)


def test_merged_keeps_the_last_reading_of_an_envoy_that_stopped() -> None:
    gone, stays = "http://127.0.0.1:3/", "http://127.0.0.1:4/"
    seen = {ENVOY: _v2(1, 0, {}), gone: _v2(80, 0, {})}
    latest = {ENVOY: _v2(5, 0, {}), stays: _v2(2, 0, {})}
    assert merged(seen, latest) == {gone: seen[gone], ENVOY: latest[ENVOY], stays: latest[stays]}


def test_parse_stats_reads_the_subset_counters_and_bins_but_not_the_external_copies() -> None:
    data = {
        "stats": [
            {"name": f"{V2}.upstream_rq_total", "value": 40},
            {"name": f"{V2}.upstream_rq_5xx", "value": 13},
            {"name": f"{V2}.external.upstream_rq_5xx", "value": 13},
            {
                "name": f"{OTHER}.upstream_rq_total",
                "value": 999,
            },
            {
                "histograms": {
                    "supported_percentiles": [0, 50, 99],
                    "details": [
                        {
                            "name": f"{V2}.upstream_rq_time",
                            "percentiles": [],
                            "totals": [
                                {"lower_bound": 1, "width": 0.1, "count": 6},
                                {"lower_bound": 0, "width": 0, "count": 4},
                            ],
                            "intervals": [],
                        },
                        {
                            "name": f"{V2}.external.upstream_rq_time",
                            "percentiles": [],
                            "totals": [{"lower_bound": 1, "width": 0.1, "count": 6}],
                            "intervals": [],
                        },
                    ],
                }
            },
        ]
    }
    snapshot = parse_stats(data, "backend-service")
    assert set(snapshot) == {"v2"}
    assert snapshot["v2"].counters == {"upstream_rq_total": 40, "upstream_rq_5xx": 13}
    assert snapshot["v2"].bins == {(1.0, 0.1): 6, (0.0, 0.0): 4}


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10,50", "the last step must be 100"),
        ("50,25,100", "steps must increase"),
        ("10,10,100", "steps must increase"),
        ("0,100", "from 1 to 100"),
        ("10,half,100", "whole percents"),
    ],
)
def test_bad_steps_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        parse_steps(text)


def test_steps_and_durations_parse() -> None:
    assert parse_steps("10,25,50,100") == [10, 25, 50, 100]
    assert parse_steps("100") == [100]
    assert [parse_duration(t) for t in ("30s", "1m", "500ms", "2")] == [30.0, 60.0, 0.5, 2.0]
    for bad in ("0s", "soon", "2h", "-1s"):
        with pytest.raises(CliError, match="--interval"):
            parse_duration(bad)


def test_the_stable_subset_defaults_to_the_one_the_route_sends_most_to() -> None:
    assert resolve("backend-service", "v2", None, ["v1", "v2"], {"v1": 100}) == "v1"
    assert resolve("b", "v2", None, ["v1", "v2", "v3"], {"v1": 30, "v3": 60, "v2": 10}) == "v3"
    with pytest.raises(CliError, match="no subset 'v9'"):
        resolve("backend-service", "v9", None, ["v1", "v2"], {"v1": 100})
    with pytest.raises(CliError, match="already receives 100%"):
        resolve("backend-service", "v2", None, ["v1", "v2"], {"v1": 0, "v2": 100})
    with pytest.raises(CliError, match="must differ"):
        resolve("backend-service", "v2", "v2", ["v1", "v2"], {"v1": 100})


def test_a_step_gives_the_canary_its_share_and_keeps_other_subsets_listed_at_zero() -> None:
    plan = Plan("s", "v2", "v1", [10, 100], 1.0, LIMITS, before={"v1": 70, "v3": 30})
    assert plan.weights_at(10) == {"v1": 90, "v3": 0, "v2": 10}
    assert plan.weights_at(100) == {"v1": 0, "v3": 0, "v2": 100}


# --------------------------------------------------------------------------- the lock


def test_a_second_rollout_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    with RolloutLock(tmp_path, "backend-service"):
        assert (tmp_path / "rollout.lock").exists()
        with pytest.raises(CliError, match=rf"already running \(pid {os.getpid()}"):
            RolloutLock(tmp_path, "backend-service").__enter__()
    assert not (tmp_path / "rollout.lock").exists()


def test_a_lock_left_by_an_exited_process_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "rollout.lock").write_text(f'{{"pid": {gone.stdout.strip()}, "service": "x"}}')
    with RolloutLock(tmp_path, "backend-service") as lock:
        assert lock.held
        assert f'"pid": {os.getpid()}' in (tmp_path / "rollout.lock").read_text()


def test_a_step_reads_every_envoy_while_it_measures_even_with_no_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a terminal (--json, CI) nothing is shown, but each Envoy is still read every
    PROGRESS_S: a sidecar that stops mid-step keeps what it counted until its last read."""
    import io

    from mesh.errors import StateError
    from mesh.rollout import run as rollout_run
    from mesh.rollout.report import Console

    gone = "http://127.0.0.1:3/"
    reads = iter(
        [
            {ENVOY: _v2(10, 0, {}), gone: _v2(5, 0, {})},
            StateError("Envoy admin http://127.0.0.1:1/ does not answer"),  # a blip: read on
            {ENVOY: _v2(12, 0, {})},  # the sidecar stopped
        ]
    )

    def read(urls: list[str], service: str, client: object) -> dict[str, dict[str, SubsetTotals]]:
        got = next(reads, {ENVOY: _v2(12, 0, {})})
        if isinstance(got, Exception):
            raise got
        return got

    class Target:
        admin_url = ENVOY

        def stats_urls(self) -> list[str]:
            return [ENVOY, gone]

    monkeypatch.setattr(rollout_run.metrics, "read", read)
    monkeypatch.setattr(rollout_run, "PROGRESS_S", 0.01)
    plan = Plan("backend-service", "v2", "v1", [100], 0.2, LIMITS, {"v1": 100})
    rollout = rollout_run.Rollout(Target(), plan, Console(out=io.StringIO()))  # type: ignore[arg-type]
    assert not rollout.console.tty
    rollout._measure(1, 100, {})
    assert rollout.seen == {ENVOY: _v2(12, 0, {}), gone: _v2(5, 0, {})}
