"""Flagger's kinds (flagger.app: Canary, MetricTemplate, AlertProvider) against the schema
the project keeps: ``flagger-schema.json``, the strict ``openAPIV3Schema`` of Flagger's
CRDs of one release (``SCHEMA_VERSION``; regenerate with ``python -m mesh.check.flagger_crd``).
Every error is reported (TM301), as for the core kinds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from mesh.check.findings import Finding, Severity
from mesh.check.flagger_crd import SCHEMA_FILE
from mesh.check.loader import Resource

GROUP = "flagger.app"
CODE = "TM301"
MAX_ERRORS_PER_OBJECT = 8


@cache
def schema_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def schema_version() -> str:
    """The Flagger release the kept schema comes from, e.g. ``v1.44.0``."""
    return str(schema_file()["version"])


def schema_source() -> str:
    """Where the kept schema comes from: the CRD file of that release."""
    return str(schema_file()["source"])


def is_flagger(res: Resource) -> bool:
    return res.group == GROUP


@cache
def _validator(api_version: str, kind: str) -> Any | None:
    import jsonschema

    schema = schema_file()["kinds"].get(f"{api_version} {kind}")
    return None if schema is None else jsonschema.Draft7Validator(schema)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: Any) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        return f"unknown field {', '.join(map(repr, extra))}"
    if error.validator == "oneOf" and "required" in json.dumps(error.validator_value):
        options = [" + ".join(b.get("required", [])) for b in error.validator_value]
        return f"must set exactly one of: {'; '.join(options)}"
    text = " ".join(str(error.message).split())
    return text if len(text) <= 200 else text[:197] + "..."


def check_schema(res: Resource) -> Iterator[Finding]:
    validator = _validator(res.api_version, res.kind)
    if validator is None:
        known = ", ".join(schema_file()["kinds"])
        yield res.finding(
            CODE,
            Severity.ERROR,
            f"unknown Flagger apiVersion/kind {res.api_version} {res.kind} "
            f"(Flagger {schema_version()} serves {known})",
        )
        return
    errors = sorted(validator.iter_errors(res.doc), key=lambda e: list(map(str, e.path)))
    for error in errors[:MAX_ERRORS_PER_OBJECT]:
        yield res.finding(CODE, Severity.ERROR, f"{_path(error.path)}: {_message(error)}")
    if len(errors) > MAX_ERRORS_PER_OBJECT:
        yield res.finding(
            CODE, Severity.ERROR, f"... and {len(errors) - MAX_ERRORS_PER_OBJECT} more errors"
        )
