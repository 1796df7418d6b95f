"""GET /api/tasks reuses its rendered list only while no process has committed (issue 16)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backend.store import TaskStore

from .conftest import BackendFactory


def _titles(body: dict) -> list[str]:
    return [t["title"] for t in body["tasks"]]


def test_stamp_holds_still_without_writes_and_moves_on_every_kind_of_commit(tmp_path: Path):
    store = TaskStore(tmp_path / "tasks.db")
    store.open(seed=False)
    first = store.read_stamp()
    assert store.read_stamp() == first
    # a commit on this very connection (data_version does not show it): the write count does
    task, _ = store.create("mine", None)
    assert task is not None
    after_own = store.read_stamp()
    assert after_own != first
    # a commit by another connection, as another process makes it
    other = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None)
    other.execute("UPDATE tasks SET title = 'theirs' WHERE id = ?", (task.id,))
    other.close()
    assert store.read_stamp() != after_own
    store.close()


def test_a_stamp_names_its_connection(tmp_path: Path):
    # data_version counts per connection: equal counts of two connections say nothing
    a, b = TaskStore(tmp_path / "tasks.db"), TaskStore(tmp_path / "tasks.db")
    a.open(seed=False)
    b.open(seed=False)
    assert a.read_stamp()[0] == 0 and b.read_stamp()[0] == 0  # each store counts its own
    first = a.read_stamp()
    a.close()
    a.open(seed=False)  # a new connection after close: a new serial, never the old stamp
    assert a.read_stamp()[0] == 1 and a.read_stamp() != first
    a.close()
    b.close()


async def test_each_version_sees_the_others_writes_at_once(make_backend: BackendFactory):
    async with make_backend("v1") as v1, make_backend("v2") as v2:
        before = (await v1.get("/api/tasks")).json()
        assert (await v1.get("/api/tasks")).json() == before  # served from the cache
        created = (await v2.post("/api/tasks", json={"title": "from v2"})).json()
        assert "from v2" in _titles((await v1.get("/api/tasks")).json())
        await v1.patch(f"/api/tasks/{created['id']}", json={"title": "renamed by v1"})
        listed = (await v2.get("/api/tasks")).json()
        assert "renamed by v1" in _titles(listed) and "from v2" not in _titles(listed)
        await v2.delete(f"/api/tasks/{created['id']}")
        assert (await v1.get("/api/tasks")).json() == before


@pytest.mark.parametrize("store_location", ["sqlite"], indirect=True)  # a raw SQLite write
async def test_a_write_by_another_process_is_seen_and_the_reply_is_unchanged(
    make_backend: BackendFactory, db_path: Path
):
    async with make_backend("v2") as v2:
        first = await v2.get("/api/tasks")
        assert first.headers["content-type"] == "application/json"
        assert first.headers["x-backend-version"] == "v2"
        assert int(first.headers["content-length"]) == len(first.content)
        assert first.content.startswith(b'{"version":"v2","instance":"backend-v2-0","tasks":[')
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute(
            "INSERT INTO tasks (title, priority, created_at, updated_at)"
            " VALUES ('raw insert', 'high', 'x', 'x')"
        )
        other.close()
        listed = (await v2.get("/api/tasks")).json()
        assert "raw insert" in _titles(listed)
