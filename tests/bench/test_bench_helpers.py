"""`make bench` helpers: parsing, ratios, verdicts and process plumbing - never timing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bench import load as bench_load
from bench import mesh_up, prerequisites, report, servers
from bench import run as bench
from bench.load import LoadResult
from bench.processes import ProcessTree, Service
from mesh.manifests import load

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:5000/api/tasks
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.61ms  520.12us  12.80ms   91.02%
    Req/Sec     8.91k   301.22     9.30k    80.00%
  Latency Distribution
     50%  850.00us
     75%    3.70ms
     90%    4.01ms
     99%    1.25s
  44321 requests in 5.00s, 30.11MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:   8864.20
Transfer/sec:      6.02MB
"""


def test_wrk_output_is_parsed_with_its_units(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(argv: list[str], **_: object) -> SimpleNamespace:
        seen.append(argv)
        return SimpleNamespace(stdout=WRK_OUTPUT)

    monkeypatch.setattr(bench_load.subprocess, "run", fake_run)
    result = bench_load._wrk("http://127.0.0.1:5000/api/tasks", 32, 5.0)
    assert seen[0][:4] == ["wrk", "-t1", "-c32", "-d5s"]
    assert result.rps == pytest.approx(8864.20)
    assert result.p50_ms == pytest.approx(0.85)  # us -> ms
    assert result.p99_ms == pytest.approx(1250.0)  # s -> ms
    assert result.requests == 44321
    assert result.errors == 17 + 2 + 1 + 4


def _runs(*rps: float) -> list[LoadResult]:
    return [LoadResult(r, p50_ms=1000 / r, p99_ms=4000 / r, requests=int(r), errors=0) for r in rps]


def _config(key: str, *rps: float) -> bench_load.Config:
    return bench_load.Config(key, key, f"http://127.0.0.1/{key}", [], _runs(*rps))


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    a = _config("a", 100, 300, 900)
    b = _config("b", 50, 600, 300)  # per round: 2.0, 0.5, 3.0
    assert report.ratio(a, b) == pytest.approx(2.0)
    assert a.median_run().rps == 300


def test_hop_added_latency_is_per_round() -> None:
    hop = report.Hop(direct=_runs(1000, 500), via_envoy=_runs(800, 400))
    # p50 = 1000 / rps: rounds add 0.25 ms and 0.5 ms
    assert hop.added_ms(lambda r: r.p50_ms) == pytest.approx(0.375)


def test_report_marks_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    keys = {t.numerator for t in report.TARGETS} | {t.denominator for t in report.TARGETS}
    rps = {key: 1000.0 for key in keys}
    rps["httpbin"] = rps["metrics"] / 3  # backend 3x httpbin: PASS
    rps["chain"] = rps["metrics"] * 0.2  # chain 0.2 of backend: MISS
    rps["envoy-chain"] = rps["chain"] * 0.9  # within 25%: PASS
    configs = [_config(k, v, v, v) for k, v in sorted(rps.items())]
    hop = report.Hop(direct=_runs(1000), via_envoy=_runs(800))
    missed = report.report(
        configs,
        hop,
        ready={"backend": 0.5, "frontend": 2.0, "httpbin": 3.0},
        mesh_ready_s=2.0,
        mesh_up=[2.0, 6.0, 7.0],
        rss={"backend": 60.0, "frontend": 90.0, "envoy": 200.0},
    )
    out = capsys.readouterr().out
    assert "| backend (default) vs httpbin | 3.000 | >= 2.00 | PASS |" in out
    assert "| chain via Envoy vs direct chain | 0.900 | >= 0.80 | PASS |" in out
    assert any(m.startswith("frontend->backend chain vs backend 0.200") for m in missed)
    assert "frontend ready in 2.00 s" in missed and "frontend RSS 90 MB" in missed
    assert "mesh up k8s ready in 6.00 s" in missed
    # httpbin and Envoy are shown, not held to our targets
    assert not [m for m in missed if "httpbin" in m.split(" vs ")[0] or "envoy" in m]
    assert len(missed) == 4
    assert "targets missed:" not in out  # said once, after every table (summary)
    report.summary(missed)
    assert capsys.readouterr().out.strip().startswith("targets missed: frontend->backend")
    report.summary([])
    assert capsys.readouterr().out.strip() == "every target met"


def test_on_port_substitutes_the_port_start_service_sets() -> None:
    argv = servers.on_port(["printf", "%s\\n", "a b", "127.0.0.1:{port}", "{port}", "x'y"])
    out = subprocess.run(
        argv, env={**os.environ, "PORT": "4321"}, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["a b", "127.0.0.1:4321", "4321", "x'y"]


@pytest.fixture
def parent_with_child(tmp_path: Path) -> Iterator[Service]:
    ready = tmp_path / "child-started"
    code = (
        "import subprocess, sys, pathlib; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(ready)!r}).write_text(str(c.pid)); c.wait()"
    )
    popen = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    tree = ProcessTree("tree", popen, 0, tmp_path / "log")
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # wait for the child to exist, not a pass condition
        assert ready.exists(), "child never started"
        yield tree
    finally:
        tree.stop()


def test_process_tree_counts_its_children(parent_with_child: Service) -> None:
    tree = parent_with_child
    assert isinstance(tree, ProcessTree)
    child = int(Path(tree.log_path.parent / "child-started").read_text())
    assert tree.pids() == [tree.popen.pid, child]
    own = Service("parent", tree.popen, 0, tree.log_path)
    assert tree.rss_mb() > own.rss_mb() > 0


def test_missing_wrk_that_cannot_be_installed_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prerequisites.shutil, "which", lambda name: None)
    calls: list[list[str]] = []

    def failing_apt(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package wrk\n")

    with pytest.raises(prerequisites.BenchError, match="Unable to locate package wrk"):
        prerequisites.ensure_wrk(run=failing_apt)
    assert calls and calls[0][-4:] == ["install", "-y", "-q", "wrk"]


@pytest.mark.parametrize(
    "argv", [["-d", "0"], ["-d", "99"], ["-r", "0"], ["-c", "0"], ["--warmup", "-1"]]
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(argv)
    assert exc.value.code == 2
    assert "bench/run.py: error:" in capsys.readouterr().err


def test_one_backend_overlay_is_k8s_with_one_v1_replica() -> None:
    default = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text())["resources"]
    overlay = yaml.safe_load((bench.ONE_BACKEND / "kustomization.yaml").read_text())
    assert overlay["resources"] == [f"../../k8s/{r}" for r in default]
    replicas = {d.name: d.instance_names() for d in load(bench.ONE_BACKEND).deployments}
    full = {d.name: d.instance_names() for d in load(ROOT / "k8s").deployments}
    assert replicas["backend-v1"] == ["backend-v1-0"]
    assert {k: v for k, v in replicas.items() if k != "backend-v1"} == {
        k: v for k, v in full.items() if k != "backend-v1"
    }


def test_mesh_up_timing_retries_only_a_port_race(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    errors = [prerequisites.BenchError("mesh up: port 1234 (gateway) ... Address already in use")]
    calls: list[Path] = []

    def fake(work: Path) -> float:
        calls.append(work)
        if errors:
            raise errors.pop()
        return 1.25

    monkeypatch.setattr(mesh_up, "_time_mesh_up", fake)
    assert mesh_up.time_mesh_up(tmp_path) == 1.25 and len(calls) == 2

    calls.clear()
    errors.append(prerequisites.BenchError("mesh up k8s not ready: frontend-0 exited"))
    with pytest.raises(prerequisites.BenchError, match="frontend-0 exited"):
        mesh_up.time_mesh_up(tmp_path)
    assert len(calls) == 1


def test_run_rounds_warms_up_then_loads_every_config_once_a_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, float, tuple[Service, ...]]] = []

    def fake_load(url: str, *, connections: int, duration_s: float, servers=()) -> LoadResult:  # noqa: ANN001
        calls.append((url, duration_s, tuple(servers)))
        return LoadResult(100.0, 1.0, 2.0, 100, 0)

    monkeypatch.setattr(bench_load, "run_load", fake_load)
    configs = [_config("a"), _config("b"), _config("c")]
    bench_load.run_rounds(configs, rounds=2, connections=8, duration_s=3.0, warmup_s=1.0)
    warm, measured = calls[:3], calls[3:]
    assert sorted(u for u, d, _ in warm) == sorted(c.url for c in configs)
    assert all(d == 1.0 for _, d, _ in warm)
    assert len(measured) == 6 and all(d == 3.0 for _, d, _ in measured)
    for round_calls in (measured[:3], measured[3:]):
        assert sorted(u for u, _, _ in round_calls) == sorted(c.url for c in configs)
    assert [len(c.runs) for c in configs] == [2, 2, 2]


def test_run_rounds_skips_a_zero_warmup(monkeypatch: pytest.MonkeyPatch) -> None:
    durations: list[float] = []
    monkeypatch.setattr(
        bench_load,
        "run_load",
        lambda url, *, connections, duration_s, servers=(): (
            durations.append(duration_s) or LoadResult(1.0, 1.0, 1.0, 1, 0)
        ),
    )
    bench_load.run_rounds([_config("a")], rounds=1, connections=1, duration_s=2.0, warmup_s=0)
    assert durations == [2.0]


def _fake_venv(root: Path, python_body: str) -> Path:
    """A venv-shaped folder: bin/gunicorn, and bin/python running PYTHON_BODY (a shell script)."""
    (root / "bin").mkdir(parents=True)
    for name, body in (("gunicorn", "exit 0"), ("python", python_body)):
        path = root / "bin" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return root


def test_httpbin_runs_from_its_own_venv_not_the_test_venv(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path / "venv", "exit 0")
    assert prerequisites.ensure_httpbin(venv) == venv / "bin" / "gunicorn"
    with pytest.raises(prerequisites.BenchError, match=r"no httpbin venv at .*: run `make bench`"):
        prerequisites.ensure_httpbin(tmp_path / "absent")
    broken = _fake_venv(tmp_path / "broken", "echo 'ModuleNotFoundError: gevent' >&2; exit 1")
    with pytest.raises(prerequisites.BenchError, match="ModuleNotFoundError: gevent"):
        prerequisites.ensure_httpbin(broken)


def test_the_bench_extra_leaves_greenlet_alone() -> None:
    """`make bench` installs the bench extra into the test venv: nothing in it may pin
    greenlet < 3 (httpbin, gevent and gunicorn's gevent worker live in HTTPBIN_VENV)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[\[<>=!~ ;]", r)[0].lower() for r in project["optional-dependencies"]["bench"]
    }
    assert names and not names & {"httpbin", "gevent", "gunicorn", "greenlet"}
    assert "$(HTTPBIN_VENV)/bin/python -m pip install" in (ROOT / "Makefile").read_text()
