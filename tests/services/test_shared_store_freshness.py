"""v1 and v2 as two real processes on one store: a GET never serves a list older than a
write the other process has answered (GET /api/tasks reuses its rendered list until
`PRAGMA data_version` or its own write count moves; issue 16)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.procs import Proc, running

from .conftest import start_backend

pytestmark = pytest.mark.integration


def _titles(proc: Proc, client: httpx.Client) -> dict[int, str]:
    body = client.get(proc.url + "/api/tasks").json()
    return {t["id"]: t["title"] for t in body["tasks"]}


def test_each_process_lists_the_others_writes_at_once(tmp_path: Path) -> None:
    db = tmp_path / "data" / "tasks.db"
    procs: list[Proc] = []
    with running(procs), httpx.Client(timeout=30) as client:
        procs.append(start_backend("v1", db, tmp_path / "logs"))
        procs.append(start_backend("v2", db, tmp_path / "logs"))
        run = uuid.uuid4().hex[:8]
        expected = _titles(procs[0], client)
        for i in range(30):
            writer, reader = (procs[0], procs[1]) if i % 2 else (procs[1], procs[0])
            for proc in procs:  # both have this list rendered and cached now
                assert _titles(proc, client) == expected
            title = f"{run}-{i}"
            if i % 3 == 0 or not expected:
                r = client.post(writer.url + "/api/tasks", json={"title": title})
                assert r.status_code == 201
                expected[r.json()["id"]] = title
            elif i % 3 == 1:
                task_id = max(expected)
                r = client.patch(writer.url + f"/api/tasks/{task_id}", json={"title": title})
                assert r.status_code == 200
                expected[task_id] = title
            else:
                task_id = min(expected)
                assert client.delete(writer.url + f"/api/tasks/{task_id}").status_code == 204
                del expected[task_id]
            assert _titles(reader, client) == expected, f"round {i}: {reader.name} is stale"
            assert _titles(writer, client) == expected, f"round {i}: {writer.name} is stale"
