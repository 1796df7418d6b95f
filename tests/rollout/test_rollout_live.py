"""`mesh rollout` against a real `mesh up` process and its Envoy: promoted, rolled back
on errors and on latency, not enough traffic, Ctrl-C, bad input; the weights Envoy
serves (its config dump, read by the test itself) follow each step.

Intervals are 2 s with the rollout's own bounded load (--load); each step also waits
for Envoy's stats flush (up to 1 s: mesh/envoy.py STATS_FLUSH_INTERVAL; Envoy's default
is 5 s), so a rollout of two or three steps takes ~5-15 s.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.rollout.support import (
    DEADLINE_S,
    FILES,
    SERVICE,
    Mesh,
    events,
    outcome_json,
    wait_served,
)

pytestmark = pytest.mark.integration

FAST = ("--interval", "2s", "--load", "40", "--min-requests", "5")


def test_a_healthy_canary_is_promoted_and_envoy_serves_each_step_in_turn(mesh: Mesh) -> None:
    # A first step of 20%, not 10%: at 40 req/s for 2 s the canary's share is binomial,
    # and at 10% (mean 8) it fell under the 5 required requests about 1 run in 10.
    done, seen = mesh.rollout_watched(
        SERVICE, "--to", "v2", "--steps", "20,50,100", *FAST, "--json"
    )
    assert done.returncode == 0, done.stderr
    assert seen == [FILES, {"v1": 80, "v2": 20}, {"v1": 50, "v2": 50}, {"v2": 100}]
    assert mesh.served() == {"v2": 100}  # it returned once Envoy served the promotion
    data = outcome_json(done)
    assert data["result"] == "promoted"
    assert [s["weight"] for s in data["steps"]] == [20, 50, 100]
    assert [s["verdict"] for s in data["steps"]] == ["pass"] * 3
    assert [s["served"] for s in data["steps"]] == seen[1:]
    last = data["steps"][-1]
    assert last["canary"]["requests"] >= 5 and last["canary"]["error_rate"] == 0.0
    assert last["canary"]["p99_ms"] is not None and last["stable"]["requests"] == 0
    reasons = [e["reason"] for e in events(mesh) if e["object"] == f"rollout/{SERVICE}"]
    assert reasons[-5:] == ["RolloutStarted", "StepPassed", "StepPassed", "StepPassed", "Promoted"]
    reset = mesh.rollout(SERVICE, "--reset")  # the promotion holds until the route is reset
    assert reset.returncode == 0, reset.stderr
    assert mesh.served() == FILES


def test_a_canary_answering_503s_is_rolled_back_to_the_weights_as_they_were(mesh: Mesh) -> None:
    mesh.set_weights({"v1": 80, "v2": 20})  # a route already split before the rollout
    mesh.fault("--status", "503", "--error-rate", "0.3")
    proc = mesh.rollout(SERVICE, "--to", "v2", "--steps", "50,100", *FAST)
    assert proc.returncode == 1, proc.stderr
    assert mesh.served() == {"v1": 80, "v2": 20}
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"rolled back: step 1 \(50%\): v2 error rate \d+\.\d% > 1%; Envoy serves v1 80%, v2 20%",
        last,
    ), proc.stdout
    rate = float(re.search(r"error rate (\d+\.\d)%", last).group(1))  # type: ignore[union-attr]
    assert 10 < rate < 60  # 30% injected
    assert "| fail" not in proc.stdout and "fail: v2 error rate" in proc.stdout


def test_a_slow_canary_is_rolled_back_on_its_p99(mesh: Mesh) -> None:
    mesh.fault("--delay-ms", "800")
    proc = mesh.rollout(SERVICE, "--to", "v2", "--steps", "50,100", "--max-p99-ms", "500", *FAST)
    assert proc.returncode == 1, proc.stderr
    reason = re.search(r"rolled back: step 1 \(50%\): v2 p99 (\d+)ms > 500ms", proc.stdout)
    assert reason is not None, proc.stdout
    assert 700 <= int(reason.group(1)) <= 2000
    assert mesh.served() == FILES


def test_a_step_without_enough_canary_traffic_fails_after_its_interval(mesh: Mesh) -> None:
    started = time.monotonic()
    proc = mesh.rollout(SERVICE, "--to", "v2", "--steps", "10,100", "--interval", "1s", "--json")
    assert proc.returncode == 1, proc.stderr
    data = outcome_json(proc)
    assert data["result"] == "rolled_back"
    assert data["reason"] == "step 1 (10%): not enough traffic: v2 got 0 requests < 20"
    assert data["steps"][0]["canary"] == {"requests": 0, "error_rate": 0.0, "p99_ms": None}
    assert time.monotonic() - started >= 1.0  # judged after the interval, not before
    assert mesh.served() == FILES


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_restores_the_weights_as_they_were_then_exits_130(
    mesh: Mesh, sig: signal.Signals
) -> None:
    proc = subprocess.Popen(
        mesh.argv(SERVICE, "--to", "v2", "--steps", "10,50,100", "--interval", "60s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_served(mesh, {"v1": 90, "v2": 10})  # step 1 is in force
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert mesh.served() == FILES  # restored before it exited
    assert "rolled back: interrupted during step 1 (10%)" in out
    assert not (mesh.state_dir / "rollout.lock").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch-service", "--to", "v2"), "no Service 'nosuch-service'"),
        ((SERVICE, "--to", "v9"), "no subset 'v9' (have: v1, v2)"),
        ((SERVICE, "--to", "v2", "--from", "v7"), "no subset 'v7'"),
        ((SERVICE, "--to", "v2", "--steps", "50,25,100"), "steps must increase"),
        ((SERVICE, "--to", "v2", "--steps", "10,50"), "the last step must be 100"),
        ((SERVICE, "--to", "v2", "--interval", "0s"), "--interval"),
        ((SERVICE, "--to", "v2", "--max-error-rate", "-1"), "--max-error-rate"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    mesh: Mesh, args: tuple[str, ...], message: str
) -> None:
    generation = mesh.generation()
    proc = mesh.rollout(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mesh rollout: ") and message in lines[0]
    assert mesh.generation() == generation and mesh.served() == FILES


def test_a_second_rollout_while_one_runs_is_refused_and_a_stale_lock_is_not(mesh: Mesh) -> None:
    lock = mesh.state_dir / "rollout.lock"
    lock.write_text(f'{{"pid": {os.getpid()}, "service": "{SERVICE}"}}\n')  # a live holder
    try:
        generation = mesh.generation()
        proc = mesh.rollout(SERVICE, "--to", "v2")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"a rollout of {SERVICE} is already running (pid {os.getpid()}" in proc.stderr
        assert mesh.generation() == generation and mesh.served() == FILES
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        lock.write_text(f'{{"pid": {gone.stdout.strip()}, "service": "{SERVICE}"}}\n')
        proc = mesh.rollout(SERVICE, "--to", "v2", "--steps", "100", "--interval", "0.5s")
        assert proc.returncode == 1 and "not enough traffic" in proc.stdout, proc.stderr
    finally:
        lock.unlink(missing_ok=True)


def test_write_puts_the_promotion_in_the_file_and_hands_the_route_back(mesh: Mesh) -> None:
    vs_file = mesh.directory / "istio" / "virtualservice-backend.yaml"
    original = vs_file.read_text()
    try:
        proc = mesh.rollout(SERVICE, "--to", "v2", "--steps", "100", *FAST, "--write", "--json")
        assert proc.returncode == 0, proc.stderr
        assert Path(outcome_json(proc)["written"]).resolve() == vs_file.resolve()
        text = vs_file.read_text()
        assert text.startswith(original.split("apiVersion")[0])  # the header comments kept
        http = yaml.safe_load(text)["spec"]["http"]
        assert http[0] == yaml.safe_load(original)["spec"]["http"][0]  # x-canary rule as it was
        assert http[-1]["route"] == [{"destination": {"host": "backend-service", "subset": "v2"}}]
        assert mesh.served() == {"v2": 100}
        vs_file.write_text(original)  # the files decide again: no rollout holds the route
        wait_served(mesh, FILES)
    finally:
        vs_file.write_text(original)


def test_envoy_merges_the_latency_histograms_each_second(mesh: Mesh) -> None:
    """The rollout judges a step by upstream_rq_time, which /stats shows only after a stats
    flush: the running Envoy flushes every second (its default, 5 s, held each step up)."""
    dump = httpx.get(f"{mesh.admin_url}/config_dump", timeout=10.0).json()
    (boot,) = [c for c in dump["configs"] if c["@type"].endswith("BootstrapConfigDump")]
    assert boot["bootstrap"]["stats_flush_interval"] == "1s"
