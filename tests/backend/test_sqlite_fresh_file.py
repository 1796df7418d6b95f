"""Replicas that start together on a fresh SQLite file all open it, and seed it once.

Switching a new file to WAL takes an exclusive lock that SQLite's busy handler does not
wait for: before TaskStore retried the pragma, about one start in ten of sixteen
processes failed with "database is locked" (seen by a `mesh up` as a crashed replica).
Real processes (fork), released together by a barrier, on several fresh files.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from pathlib import Path

from backend.store import SEED_TASKS, TaskStore

PROCESSES = 16
FILES = 25


def _open(path: str, barrier: object, results: object) -> None:
    barrier.wait(60)  # type: ignore[attr-defined]
    try:
        TaskStore(Path(path)).open(seed=True)
        results.put("ok")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the report is the point
        results.put(traceback.format_exc().splitlines()[-1])  # type: ignore[attr-defined]


def test_processes_opening_a_fresh_file_together_all_succeed_and_seed_once(
    tmp_path: Path,
) -> None:
    ctx = mp.get_context("fork")
    failures: list[str] = []
    for n in range(FILES):
        path = tmp_path / f"tasks-{n}.db"
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [
            ctx.Process(target=_open, args=(str(path), barrier, results)) for _ in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        failures += [f"{path.name}: {o}" for o in outcomes if o != "ok"]
        store = TaskStore(path)
        titles = [t.title for t in store.list_tasks(by_priority=False)]
        store.close()
        assert sorted(titles) == sorted(title for title, _ in SEED_TASKS), path.name
    assert failures == []
