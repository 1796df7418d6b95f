"""TASKS_DB: a path is SQLite, a postgresql:// URL is PostgreSQL, anything else is refused."""

from pathlib import Path

import pytest

from backend.dburl import PostgresUrl
from backend.settings import BackendSettings
from telemetry.settings import SettingsError


def test_a_path_is_sqlite_and_a_url_is_postgres_with_the_password_hidden():
    assert BackendSettings.from_env({"TASKS_DB": "/data/t.db"}).tasks_db == Path("/data/t.db")
    url = "postgresql://app:s3cret@postgres.default.svc:5432/tasks"
    location = BackendSettings.from_env({"TASKS_DB": url}).tasks_db
    assert isinstance(location, PostgresUrl) and location.url == url
    assert "s3cret" not in str(location) and "s3cret" not in repr(location)
    assert location.redacted == "postgresql://app:***@postgres.default.svc:5432/tasks"
    assert isinstance(
        BackendSettings.from_env({"TASKS_DB": "postgres://h/db"}).tasks_db, PostgresUrl
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mysql://h/db", "unknown scheme 'mysql'"),
        ("sqlite:///tmp/x.db", "unknown scheme 'sqlite'"),
        ("postgresql://h:99999/db", "bad URL"),
        ("postgresql://h:abc/db", "bad URL"),
        ("postgresql:///db", "names no host"),
        ("postgresql://h", "names no database"),
        ("postgresql://u:pw@h/a/b", "names no database"),
        ("://nothing", "neither a file path nor a URL"),
    ],
)
def test_a_malformed_tasks_db_names_the_setting(value, says):
    with pytest.raises(SettingsError, match="^TASKS_DB: ") as caught:
        BackendSettings.from_env({"TASKS_DB": value})
    assert says in str(caught.value)
    assert "pw" not in str(caught.value)
