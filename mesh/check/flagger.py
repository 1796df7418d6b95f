"""Flagger's kinds (flagger.app: Canary, MetricTemplate, AlertProvider) against the schema
the project keeps: ``flagger-schema.json``, the strict ``openAPIV3Schema`` of Flagger's
CRDs of one release (``SCHEMA_VERSION``; regenerate with ``python -m mesh.check.flagger_crd``).
Every error is reported (TM301), as for the core kinds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from mesh.check.crd_check import check_against
from mesh.check.findings import Finding
from mesh.check.flagger_crd import SCHEMA_FILE
from mesh.check.loader import Resource

GROUP = "flagger.app"
CODE = "TM301"


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


def check_schema(res: Resource) -> Iterator[Finding]:
    known = ", ".join(schema_file()["kinds"])
    unknown = (
        f"unknown Flagger apiVersion/kind {res.api_version} {res.kind} "
        f"(Flagger {schema_version()} serves {known})"
    )
    yield from check_against(res, schema_file()["kinds"], CODE, unknown)
