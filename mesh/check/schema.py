"""Schema checks: core kinds against Kubernetes' own OpenAPI schemas (strict),
Istio kinds against Istio's own CRD schemas (strict: unknown fields included).

Core kinds use the strict JSON schemas shipped by ``kubernetes-validate``, run
through ``jsonschema`` so that *every* error is reported, not just the first.
Istio kinds use ``istio-schema.json``: the ``openAPIV3Schema`` of every served version
of Istio's CRDs at one istio/istio commit (``mesh check --version`` names it; see
``istio_crd``), made strict. Their CEL rules are not run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from mesh.check import flagger, gatewayapi
from mesh.check.findings import Finding, Severity
from mesh.check.loader import Resource

KUBERNETES_VERSION = "1.30.0"
MAX_ERRORS_PER_OBJECT = 8
MAX_MESSAGE = 240


def check_schemas(objects: list[Resource]) -> Iterator[Finding]:
    for res in objects:
        if res.is_istio:
            yield from _check_istio(res)
        elif flagger.is_flagger(res):
            yield from flagger.check_schema(res)
        elif gatewayapi.is_gateway_api(res):
            yield from gatewayapi.check_schema(res)
        else:
            yield from _check_core(res)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


# --- core kinds -------------------------------------------------------------


def _schema_file(api_version: str, kind: str) -> str:
    # rbac.authorization.k8s.io/v1 -> rbac-v1; apps/v1 -> apps-v1; v1 -> v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@cache
def _schema_dir() -> Any:
    return resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema", f"v{KUBERNETES_VERSION}-local-strict"
    )


@cache
def _validator(api_version: str, kind: str) -> Any | None:
    import jsonschema
    from referencing import Registry
    from referencing import Resource as RefResource

    file = _schema_dir().joinpath(_schema_file(api_version, kind))
    if not file.is_file():
        return None
    schema = json.loads(file.read_text())
    definitions = json.loads(_schema_dir().joinpath("_definitions.json").read_text())
    registry = RefResource.from_contents(definitions) @ (
        RefResource.from_contents(schema) @ Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _check_core(res: Resource) -> Iterator[Finding]:
    validator = _validator(res.api_version, res.kind)
    if validator is None:
        yield res.finding(
            "TM002",
            Severity.WARNING,
            f"no Kubernetes {KUBERNETES_VERSION[:4]} schema for {res.api_version} {res.kind}; "
            "not validated",
        )
        return
    errors = sorted(validator.iter_errors(res.doc), key=lambda e: list(map(str, e.path)))
    for error in errors[:MAX_ERRORS_PER_OBJECT]:
        yield res.finding("TM001", Severity.ERROR, _short(f"{_path(error.path)}: {error.message}"))
    if len(errors) > MAX_ERRORS_PER_OBJECT:
        yield res.finding(
            "TM001", Severity.ERROR, f"... and {len(errors) - MAX_ERRORS_PER_OBJECT} more errors"
        )


# --- Istio kinds ------------------------------------------------------------


@cache
def istio_schema() -> dict[str, Any]:
    """The kept Istio API schema (``istio_crd.SCHEMA_FILE``): Istio's own CRDs of one
    istio/istio commit, made strict (``python -m mesh.check.istio_crd`` regenerates it)."""
    from mesh.check.istio_crd import SCHEMA_FILE

    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def istio_schema_version() -> str:
    data = istio_schema()
    return f"{data['source']} at {data['commit']}"


@cache
def _istio_validator(api_version: str, kind: str) -> Any | None:
    import jsonschema

    schema = istio_schema()["kinds"].get(f"{api_version} {kind}")
    return None if schema is None else jsonschema.Draft7Validator(schema)


def _istio_messages(error: Any) -> list[str]:
    where = _path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        extra = [str(k) for k in error.instance if k not in known]
        prefix = "" if where == "(top level)" else f"{where}."
        return [f"{prefix}{key}: unknown field" for key in extra]
    branches = error.validator_value if error.validator == "oneOf" else None
    if isinstance(branches, list) and isinstance(error.instance, dict):
        both = [
            key
            for branch in branches
            for key in (branch.get("required") or [])[:1]
            if key in error.instance
        ]
        if len(both) > 1:
            return [f"{where}: set only one of {', '.join(sorted(both))}"]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # the branch that got furthest says what is wrong (e.g. two of exact/prefix/regex)
        best = max(error.context, key=lambda e: len(e.absolute_path))
        return [_short(f"{where}: {best.message}")]
    return [_short(f"{where}: {error.message}")]


def _check_istio(res: Resource) -> Iterator[Finding]:
    validator = _istio_validator(res.api_version, res.kind)
    if validator is None:
        yield res.finding(
            "IST0106",
            Severity.ERROR,
            f"unknown Istio apiVersion/kind {res.api_version} {res.kind}",
        )
        return
    messages: list[str] = []
    errors = sorted(validator.iter_errors(res.doc), key=lambda e: list(map(str, e.path)))
    for error in errors:
        messages += [m for m in _istio_messages(error) if m not in messages]
    for message in messages[:MAX_ERRORS_PER_OBJECT]:
        yield res.finding("IST0106", Severity.ERROR, message)
    if len(messages) > MAX_ERRORS_PER_OBJECT:
        yield res.finding(
            "IST0106",
            Severity.ERROR,
            f"... and {len(messages) - MAX_ERRORS_PER_OBJECT} more errors",
        )
