"""TASKS_DB: a file path (SQLite, the default) or a `postgresql://` URL.

Parsed once at start, so a typo stops the backend with one line naming TASKS_DB
instead of a first request failing minutes later. A URL's password never appears
in a message or a log line (`PostgresUrl.redacted`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from telemetry.settings import SettingsError

SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class PostgresUrl:
    """A PostgreSQL connection URL; `str()` and `repr()` hide the password."""

    url: str = field(repr=False)

    @property
    def redacted(self) -> str:
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()

    def __str__(self) -> str:
        return self.redacted


StoreLocation = Path | PostgresUrl


def parse_tasks_db(value: str) -> StoreLocation:
    """A path for SQLite, or a checked PostgresUrl; SettingsError naming TASKS_DB otherwise."""
    scheme = _SCHEME.match(value)
    if scheme is None:
        if "://" in value:
            raise SettingsError(f"TASKS_DB: {value!r} is neither a file path nor a URL")
        return Path(value)
    name = scheme.group(1).lower()
    if name not in SCHEMES:
        raise SettingsError(
            f"TASKS_DB: unknown scheme {name!r} (a file path for SQLite, or postgresql://...)"
        )
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise SettingsError(f"TASKS_DB: bad URL: {exc}") from None
    location = PostgresUrl(value)
    if not parts.hostname:
        raise SettingsError(f"TASKS_DB: {location.redacted}: the URL names no host")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise SettingsError(f"TASKS_DB: {location.redacted}: the URL names no database (/NAME)")
    del port
    return location
