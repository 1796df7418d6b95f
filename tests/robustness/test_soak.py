"""bench/soak.py's verdicts: errors must match injected faults, memory must stay flat."""

from __future__ import annotations

import pytest

from bench import soak
from bench.soak import EDGE_SAMPLES, MB, Memory, Phase


@pytest.mark.parametrize(
    ("fault_on", "failed", "injected", "ok"),
    [
        (False, 0, 0, True),
        (False, 1, 0, False),  # an error with no fault on
        (False, 0, 2, False),  # the fault was not off
        (True, 4, 4, True),
        (True, 0, 0, True),  # replica ejected the whole phase: nothing injected
        (True, 5, 4, False),  # an error the fault does not explain
        (True, 3, 4, False),  # an injected error the client never saw (retried?)
    ],
)
def test_a_phase_passes_when_its_errors_are_the_injected_ones(
    fault_on: bool, failed: int, injected: int, ok: bool
) -> None:
    phase = Phase(0, fault_on, requests=100, failed=failed, injected=injected)
    assert phase.ok is ok


def test_memory_growth_is_measured_after_the_warm_up() -> None:
    m = Memory("p", 1)
    m.samples = [(float(t), 500 * MB) for t in range(5)]  # start-up peak, ignored
    m.samples += [(10.0 + t, 100 * MB + t * MB) for t in range(10)]
    first, last, growth = m.growth(warmup_s=10.0) or (0, 0, 0)
    assert first == 100 * MB + (EDGE_SAMPLES // 2) * MB
    assert last == 100 * MB + (10 - 1 - EDGE_SAMPLES // 2) * MB
    assert growth == last - first


def test_too_few_samples_give_no_verdict() -> None:
    m = Memory("p", 1, samples=[(20.0, MB)] * (2 * EDGE_SAMPLES - 1))
    assert m.growth(warmup_s=10.0) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--minutes", "0"], "--minutes"),
        (["--minutes", "abc"], "--minutes"),
        (["--minutes", "61"], "--minutes"),
        (["--flip-every", "-1"], "--flip-every"),
        (["--minutes", "0.1", "--flip-every", "10"], "two phases"),
    ],
)
def test_bad_options_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        soak.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_default_warm_up_is_a_quarter_at_most_30_seconds() -> None:
    assert soak.parse_args(["--minutes", "1"]).warmup == 15.0
    assert soak.parse_args([]).warmup == 30.0
