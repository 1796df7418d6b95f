"""bench/costs.py and the per-process CPU of run_load: arithmetic and verdicts, never timing."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from bench import costs, load, servers
from bench.load import LoadResult


def _run(cpu: dict[str, float], p50: float = 1.0, p99: float = 2.0) -> LoadResult:
    return LoadResult(1000.0, p50, p99, 1000, 0, sum(cpu.values()), dict(cpu))


def _all(
    backend: float = 120, floor: float = 100, fe: float = 200, envoy: float = 80, p99: float = 2.0
) -> dict[str, list[LoadResult]]:
    """Runs whose Envoy's floor is 14 us: a hop at 100 us is the largest that passes."""
    return {
        "envoy-floor": [_run({"envoy-floor": 14.0})] * 3,
        "metrics": [_run({"backend": backend}, p99=p99)] * 3,
        "fastapi": [_run({"fastapi": floor})] * 3,
        "chain": [_run({"frontend": fe, "backend": 100.0})] * 3,
        "envoy-chain": [_run({"frontend-0": 1, "envoy": envoy, "backend-v1-0": 1})] * 3,
        "gateway-chain": [_run({"envoy": 2 * envoy, "frontend-0": 1, "backend-v1-0": 1})] * 3,
    }


def test_every_cost_target_passes_within_its_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert costs.report(_all(), connections=32) == []
    out = capsys.readouterr().out
    assert "| backend (default) CPU/req vs bare FastAPI endpoint | 1.20x | <= 1.3x | PASS |" in out
    assert "in the direct chain | 2.00x | <= 2x | PASS |" in out
    assert "(2 hops) | 80 us | - | - |" in out  # gateway's Envoy: 160 us over 2 hops
    assert "| Envoy floor: CPU/req answering by itself (direct_response) | 14 us | - | - |" in out
    assert "(2 hops) | 5.71x | <= 7.14x | PASS |" in out


def test_each_cost_target_misses_on_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert [m.split(" ")[0] for m in costs.report(_all(backend=140), 32)] == ["backend"]
    assert len(costs.report(_all(fe=201), 32)) == 1
    assert costs.report(_all(envoy=100), 32) == []
    missed = costs.report(_all(envoy=101), 32)
    assert len(missed) == 2 and all("Envoy" in m and "vs its floor" in m for m in missed)
    missed = costs.report(_all(p99=3.5), 32)
    assert missed == ["p99 / p50, backend (default) 3.50x > 3x"]
    assert "| MISS |" in capsys.readouterr().out


def test_a_ratio_is_the_median_of_per_round_ratios() -> None:
    runs = _all()
    runs["metrics"] = [_run({"backend": v}) for v in (100, 300, 900)]
    runs["fastapi"] = [_run({"fastapi": v}) for v in (50, 600, 300)]  # rounds: 2.0, 0.5, 3.0
    assert costs.COST_TARGETS[0].value(runs) == pytest.approx(2.0)


def test_by_process_names_each_process() -> None:
    shown = costs.by_process(_run({"frontend": 310.4, "backend": 160}))
    assert shown == "frontend 310 + backend 160"
    assert costs.by_process(LoadResult(1, 1, 1, 1, 0)) == "-"


def test_run_load_splits_cpu_by_process(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = {"fe": iter([1.0, 1.3]), "be": iter([5.0, 5.1])}
    servers = [SimpleNamespace(name=n, cpu_s=lambda n=n: next(readings[n])) for n in readings]
    monkeypatch.setattr(load, "_wrk", lambda *a: LoadResult(1000.0, 1.0, 2.0, 1000, 0))
    monkeypatch.setattr(load.shutil, "which", lambda _: "/usr/bin/wrk")
    result = load.run_load("http://x", servers=servers)  # type: ignore[arg-type]
    assert result.cpu_us_by_process == pytest.approx({"fe": 300.0, "be": 100.0})
    assert result.cpu_us_per_req == pytest.approx(400.0)


def test_fastapi_floor_serves_the_body_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"version": "v1", "instance": "x", "tasks": [{"id": 1, "title": "t"}]}
    monkeypatch.setenv("BENCH_BODY", json.dumps(body))
    with TestClient(servers.fastapi_app()) as client:
        response = client.get("/api/tasks")
    assert response.status_code == 200
    assert response.json() == body


def test_a_hop_is_held_to_its_floor_of_the_same_round() -> None:
    runs = _all()
    runs["envoy-chain"] = [_run({"envoy": v}) for v in (100, 300, 60)]
    runs["envoy-floor"] = [_run({"envoy-floor": v}) for v in (50, 20, 30)]  # 2.0, 15.0, 2.0
    (hop,) = [
        t
        for t in costs.COST_TARGETS
        if t.label.endswith("vs its floor, frontend -> Envoy -> backend")
    ]
    assert hop.value(runs) == pytest.approx(2.0)
