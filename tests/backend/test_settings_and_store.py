import sqlite3
from pathlib import Path

import pytest

from backend.settings import BackendSettings
from backend.store import SEED_TASKS, TaskStore
from telemetry.settings import SettingsError


def test_defaults_and_kubernetes_service_links_are_ignored():
    s = BackendSettings.from_env(
        {"BACKEND_SERVICE_PORT": "tcp://10.0.0.1:5000", "BACKEND_SERVICE_HOST": "10.0.0.1",
         "INSTANCE_NAME": "backend-v1-7"}
    )  # fmt: skip
    assert s.port == 5000 and s.host == "0.0.0.0"
    assert s.version == "v1" and s.instance == "backend-v1-7"
    assert s.tasks_db == Path("data/tasks.db")
    assert s.seed_tasks is True and not s.fault.active
    assert not s.shows_priority


def test_full_environment():
    s = BackendSettings.from_env(
        {
            "PORT": "5001", "HOST": "127.0.0.1", "APP_VERSION": "v2", "TASKS_DB": "/tmp/x.db",
            "SEED_TASKS": "0", "FAULT_STATUS": "502", "FAULT_ERROR_RATE": "0.25",
            "FAULT_DELAY_MS": "100", "OTEL_TRACES_EXPORTER": "console", "LOG_LEVEL": "debug",
        }
    )  # fmt: skip
    assert (s.port, s.host, s.version, s.tasks_db) == (5001, "127.0.0.1", "v2", Path("/tmp/x.db"))
    assert s.seed_tasks is False and s.shows_priority
    assert (s.fault.status, s.fault.error_rate, s.fault.delay_ms) == (502, 0.25, 100)
    assert s.fault.delay_rate == 1.0
    assert s.telemetry_settings.traces_exporters == ("console",)
    assert s.telemetry_settings.service_version == "v2"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"APP_VERSION": "v3"}, "APP_VERSION"),
        ({"FAULT_STATUS": "404"}, "FAULT_STATUS"),
        ({"FAULT_ERROR_RATE": "2"}, "FAULT_ERROR_RATE"),
        ({"FAULT_DELAY_MS": "40000"}, "FAULT_DELAY_MS"),
        ({"SEED_TASKS": "maybe"}, "SEED_TASKS"),
    ],
)
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        BackendSettings.from_env(env)


def test_seeds_only_on_first_start_and_creates_parent_dir(tmp_path):
    path = tmp_path / "a" / "b" / "tasks.db"
    store = TaskStore(path)
    store.open(seed=True)
    assert len(store.list_tasks(by_priority=False)) == len(SEED_TASKS)
    task = store.list_tasks(by_priority=False)[0]
    store.delete(task.id)
    store.close()
    again = TaskStore(path)
    again.open(seed=True)
    assert len(again.list_tasks(by_priority=False)) == len(SEED_TASKS) - 1
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    again.close()


def test_no_seed_when_disabled(tmp_path):
    store = TaskStore(tmp_path / "t.db")
    store.open(seed=False)
    assert store.list_tasks(by_priority=True) == []
    store.close()


def test_update_refuses_unknown_columns(tmp_path):
    store = TaskStore(tmp_path / "t.db")
    store.open(seed=True)
    with pytest.raises(ValueError, match="unknown task fields"):
        store.update(1, {"id": 5})
    store.close()


def test_old_idempotency_keys_are_pruned_at_start(tmp_path):
    path = tmp_path / "t.db"
    store = TaskStore(path)
    store.open(seed=False)

    def render(task):
        return 201, {"id": task.id}

    store.create("a", None, idempotency_key="old", fingerprint="f", render=render)
    store.create("b", None, idempotency_key="new", fingerprint="f", render=render)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE idempotency SET created_at = '2000-01-01T00:00:00.000Z' WHERE key = 'old'"
        )
    again = TaskStore(path)
    again.open(seed=False)
    keys = [r[0] for r in sqlite3.connect(path).execute("SELECT key FROM idempotency")]
    assert keys == ["new"]
    again.close()
