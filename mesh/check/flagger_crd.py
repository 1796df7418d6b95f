"""Flagger's kinds as JSON Schema, from Flagger's own CRDs: the schema `mesh check` keeps.

``mesh/check/flagger-schema.json`` holds the ``openAPIV3Schema`` of each kind in
``artifacts/flagger/crd.yaml`` of a pinned Flagger release (``SOURCE`` below), made
strict as the API server is with ``kubectl apply`` (field validation Strict, the
default since Kubernetes 1.27): an object with ``properties`` and neither
``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` refuses other
fields. ``x-kubernetes-int-or-string`` becomes ``anyOf: [integer, string]``,
``nullable`` adds ``null``; CEL rules (``x-kubernetes-validations``) are dropped (no
API server here to run them). ``metadata`` is left as the CRD has it (the API server
checks ObjectMeta itself).

Regenerate after bumping the release (the CRD file of that tag, read offline)::

    python -m mesh.check.flagger_crd CRD.yaml --version v1.45.0 --commit SHA
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).with_name("flagger-schema.json")
SOURCE = "https://github.com/fluxcd/flagger/blob/{version}/artifacts/flagger/crd.yaml"
# Keywords of a sub-schema that only constrains (a branch of oneOf/anyOf/not): it must
# not be made strict, or it would refuse the fields that its siblings describe.
_BRANCHES = ("oneOf", "anyOf", "allOf", "not")


def schemas_from_crds(documents: list[Any]) -> dict[str, dict[str, Any]]:
    """``"group/version Kind"`` -> strict JSON Schema, for every served version."""
    out: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = version["schema"]["openAPIV3Schema"]
            key = f"{spec['group']}/{version['name']} {spec['names']['kind']}"
            out[key] = strict(schema)
    return dict(sorted(out.items()))


def strict(schema: Any, branch: bool = False) -> Any:
    """``schema`` as a JSON Schema validator reads it, unknown fields refused."""
    if isinstance(schema, list):
        return [strict(s, branch) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "x-kubernetes-validations":
            continue
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = strict(value)
        elif key in _BRANCHES:
            out[key] = strict(value, branch=True)
        else:
            out[key] = value
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if not branch and not preserve and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def build(crd_text: str, version: str, commit: str) -> dict[str, Any]:
    return {
        "source": SOURCE.format(version=version),
        "version": version,
        "commit": commit,
        "generator": "python -m mesh.check.flagger_crd",
        "kinds": schemas_from_crds(list(yaml.safe_load_all(crd_text))),
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.check.flagger_crd", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("crd", type=Path, help="artifacts/flagger/crd.yaml of the release")
    parser.add_argument("--version", required=True, help="the release tag, e.g. v1.44.0")
    parser.add_argument("--commit", required=True, help="the tag's commit")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    data = build(args.crd.read_text(), args.version, args.commit)
    args.output.write_text(dumps(data))
    print(f"{args.output}: {', '.join(data['kinds'])} from {data['source']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
