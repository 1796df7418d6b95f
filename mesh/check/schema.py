"""Schema checks: core kinds against Kubernetes' own OpenAPI schemas (strict),
Istio kinds against Istio's API models, unknown fields included.

Core kinds use the strict JSON schemas shipped by ``kubernetes-validate``, run
through ``jsonschema`` so that *every* error is reported, not just the first.
Istio kinds are parsed with ``cloudcoil-models-istio`` (generated from Istio's
CRDs); those models accept and drop unknown fields, so each object is dumped
back and compared with the input: a field that did not survive is a typo.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from mesh.check import flagger
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
def _istio_module(api_version: str) -> Any | None:
    """The cloudcoil model module for one Istio group/version, loaded alone.

    Importing ``cloudcoil.models.istio.networking.v1`` the normal way runs the
    package ``__init__`` files, which build every version of every Istio API
    (about 2 s of pydantic class construction). Loading just the one module
    file under a private name keeps ``mesh check`` under a second."""
    group, _, version = api_version.partition("/")
    area = group.removesuffix(".istio.io")
    package = importlib.util.find_spec("cloudcoil")
    if package is None or not package.submodule_search_locations or "/" in area:
        return None
    path = Path(package.submodule_search_locations[0], "models", "istio", area, f"{version}.py")
    if not path.is_file():
        return None
    name = f"_mesh_check_istio_{area}_{version}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _istio_model(api_version: str, kind: str) -> Any | None:
    from cloudcoil.resources import Resource as IstioResource

    module = _istio_module(api_version)
    model = getattr(module, kind, None) if module is not None else None
    if isinstance(model, type) and issubclass(model, IstioResource):
        return model
    return None


def _check_istio(res: Resource) -> Iterator[Finding]:
    import pydantic

    model_class = _istio_model(res.api_version, res.kind)
    if model_class is None:
        yield res.finding(
            "IST0106",
            Severity.ERROR,
            f"unknown Istio apiVersion/kind {res.api_version} {res.kind}",
        )
        return
    try:
        model = model_class.model_validate(res.doc)
    except pydantic.ValidationError as exc:
        seen: set[str] = set()
        for error in exc.errors():
            where = _path(error["loc"])
            if where in seen:
                continue
            seen.add(where)
            if len(seen) > MAX_ERRORS_PER_OBJECT:
                break
            yield res.finding("IST0106", Severity.ERROR, _short(f"{where}: {error['msg']}"))
        return
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    for field in unknown_fields(res.doc, kept):
        yield res.finding("IST0106", Severity.ERROR, f"{field}: unknown field")


def unknown_fields(original: Any, kept: Any, path: str = "") -> list[str]:
    """Paths present in ``original`` but missing from the model's round-trip."""
    out: list[str] = []
    if isinstance(original, dict):
        for key, value in original.items():
            here = f"{path}.{key}" if path else str(key)
            if not isinstance(kept, dict) or key not in kept:
                out.append(here)
            else:
                out += unknown_fields(value, kept[key], here)
    elif isinstance(original, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(original, kept, strict=False)):
            out += unknown_fields(a, b, f"{path}[{i}]")
    return out
