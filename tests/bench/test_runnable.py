"""bench/runnable.py: thread states read from /proc for real processes, the counts it
keeps, its command line, and one short real run of both chains."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench import runnable

# Each says "ready" once started (an interpreter starting up is runnable too).
SPIN = "print('ready', flush=True)\nwhile True: pass"
SLEEP = "import time; print('ready', flush=True); time.sleep(600)"


def _started(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


@pytest.fixture
def spinner_and_sleeper() -> Iterator[dict[str, int]]:
    procs = {name: _started(code) for name, code in (("spin", SPIN), ("sleep", SLEEP))}
    try:
        yield {name: p.pid for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait(timeout=30)


def test_a_spinning_process_is_runnable_and_a_sleeping_one_is_not(
    spinner_and_sleeper: dict[str, int],
) -> None:
    stats = runnable.threads(spinner_and_sleeper)
    assert {name.split(":")[0] for name in stats} == {"spin", "sleep"}
    sleep = next(name for name in stats if name.startswith("sleep:"))
    # between its "ready" and sleep() the sleeper still runs: wait until it sleeps
    deadline = time.monotonic() + 30
    while runnable.state(stats[sleep]) != "S":
        assert time.monotonic() < deadline, "the sleeper never went to sleep"
        time.sleep(0.01)
    samples = runnable.sample(stats, seconds=1.0, interval_s=0.005)
    assert samples.count >= 5  # a starved sampler still takes a few
    spin = next(name for name in stats if name.startswith("spin:"))
    # R is running or waiting for a core, so a spinning process is R however busy the
    # machine is; one blocked in sleep() never is.
    assert samples.runnable[spin] == samples.count
    assert samples.runnable[sleep] == 0
    assert samples.cpu[spin] > 0 and samples.cpu[sleep] < samples.cpu[spin]


def test_a_thread_that_ended_reads_as_gone() -> None:
    proc = _started(SLEEP)
    try:
        path = next(iter(runnable.threads({"sleep": proc.pid}).values()))
        assert runnable.cpu_s(path) >= 0
    finally:
        proc.kill()
        proc.wait(timeout=30)  # reaped: its /proc entry is gone
    assert runnable.state(path) is None
    assert runnable.cpu_s(path) == 0.0


def test_share_below_counts_samples_with_fewer_runnable_threads_than_cores() -> None:
    samples = runnable.Samples()
    for running in (["a"], [], ["a", "b"], ["a", "b", "c"]):
        samples.add(running)
    assert samples.count == 4
    assert samples.share_below(2) == 0.5  # the samples with 1 and 0 runnable
    assert samples.share_below(1) == 0.25
    assert samples.runnable == {"a": 3, "b": 2, "c": 1}
    assert runnable.Samples().share_below(2) == 0.0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--duration", "0"], "--duration must be"),
        (["-c", "0"], "--connections 1-1000"),
        (["--interval-ms", "0.01"], "--interval-ms must be"),
    ],
)
def test_bad_arguments_are_named(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runnable.main(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.integration
def test_both_chains_are_sampled_with_their_processes(capsys: pytest.CaptureFixture[str]) -> None:
    assert runnable.main(["--duration", "1", "--warmup", "0.5", "-c", "4"]) == 0
    out = capsys.readouterr().out
    direct, gateway = out.split("gateway -> frontend -> Envoy -> backend")
    assert "frontend -> backend" in direct and "| frontend:" in direct
    # the mesh's processes under load: Envoy's worker and the replicas were runnable
    for thread in ("| envoy:", "| frontend-0:", "| backend-v1-0:"):
        assert thread in gateway, thread
    assert "fewer runnable threads than cores" in gateway
