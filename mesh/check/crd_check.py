"""One object against the strict JSON Schema of its kind, kept from a project's CRDs
(Flagger's, the Gateway API's): every error is a finding with the field path, as the
API server words it under ``kubectl apply`` (field validation Strict)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.loader import Resource

MAX_ERRORS_PER_OBJECT = 8


_VALIDATORS: dict[int, Any] = {}  # id of a kept (cached, never freed) schema -> validator


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    if id(schema) not in _VALIDATORS:
        _VALIDATORS[id(schema)] = jsonschema.Draft7Validator(schema)
    return _VALIDATORS[id(schema)]


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: Any) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        # YAML keys need not be strings (`on:`, `null:` parse as bool / None)
        extra = sorted((k for k in error.instance if k not in known), key=repr)
        return f"unknown field {', '.join(map(repr, extra))}"
    if error.validator == "oneOf" and "required" in json.dumps(error.validator_value):
        options = [" + ".join(b.get("required", [])) for b in error.validator_value]
        return f"must set exactly one of: {'; '.join(options)}"
    text = " ".join(str(error.message).split())
    return text if len(text) <= 200 else text[:197] + "..."


def check_against(
    res: Resource, kinds: dict[str, Any], code: str, unknown: str
) -> Iterator[Finding]:
    """RES against ``KINDS["<apiVersion> <kind>"]`` (a schema file loaded once and kept);
    UNKNOWN is the message when it has no such kind."""
    schema = kinds.get(f"{res.api_version} {res.kind}")
    if schema is None:
        yield res.finding(code, Severity.ERROR, unknown)
        return
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(res.doc), key=lambda e: list(map(str, e.path)))
    for error in errors[:MAX_ERRORS_PER_OBJECT]:
        yield res.finding(code, Severity.ERROR, f"{_path(error.path)}: {_message(error)}")
    if len(errors) > MAX_ERRORS_PER_OBJECT:
        yield res.finding(
            code, Severity.ERROR, f"... and {len(errors) - MAX_ERRORS_PER_OBJECT} more errors"
        )
