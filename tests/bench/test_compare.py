"""bench/compare.py: which tree runs and the before/after table - never timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import compare
from bench.load import LoadResult
from bench.processes import Service


def _side(key: str, *runs: tuple[float, float]) -> compare.Side:
    results = [LoadResult(rps, 1.0, 3.0, int(rps), 0, cpu) for rps, cpu in runs]
    return compare.Side(key, f"http://127.0.0.1/{key}", [], results)


def test_the_backend_runs_from_pythonpath_not_the_working_directory() -> None:
    argv = compare.backend_argv()
    assert argv[1:] == ["-P", "-m", "backend"]


def test_table_shows_medians_and_per_round_ratios() -> None:
    before = _side("before", (100, 400), (200, 300), (300, 200))
    after = _side("after", (150, 200), (200, 300), (900, 100))  # rounds: 1.5, 1.0, 3.0
    lines = compare.table([before, after])
    assert "| before | 200 | 300 | 1.00 | 3.00 |" in lines
    assert "| after | 200 | 200 | 1.00 | 3.00 |" in lines
    assert lines[-1] == "after/before, median of per-round ratios: req/s 1.50, CPU/req 0.50"


def test_table_needs_the_same_rounds_on_both_sides() -> None:
    with pytest.raises(ValueError):
        compare.table([_side("before", (1, 1)), _side("after", (1, 1), (2, 2))])


def test_chain_frontend_runs_from_its_tree_in_front_of_its_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}

    def fake_start(name: str, argv: list[str], *, env: dict[str, str], log_dir: Path) -> str:
        seen.update(name=name, argv=argv, env=env)
        return name

    monkeypatch.setattr(compare, "start_service", fake_start)
    backend = Service("before", None, 5001, tmp_path / "log")  # type: ignore[arg-type]
    compare.start_frontend("before-frontend", tmp_path / "tree", tmp_path, backend)
    assert seen["argv"][1:] == ["-P", "-m", "frontend"]  # type: ignore[index]
    env = seen["env"]
    assert env["PYTHONPATH"] == str(tmp_path / "tree")  # type: ignore[index]
    assert env["BACKEND_URL"] == "http://127.0.0.1:5001"  # type: ignore[index]
