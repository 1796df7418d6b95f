"""Defensive access to parsed YAML: wrong types read as empty."""

from __future__ import annotations

import json
from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in as_list(value) if isinstance(v, dict)]


def as_str(value: Any) -> str:
    """A string field's value; any other type reads as empty (the schema check reports it)."""
    return value if isinstance(value, str) else ""


def plain(value: Any) -> Any:
    """``value`` with every key a string and every scalar JSON can write, for comparing
    parts of manifests (YAML gives integer keys, dates, ...)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def canonical(value: Any) -> str:
    """One text per value, equal for equal values whatever the key order."""
    return json.dumps(plain(value), sort_keys=True)
