"""Build ``istio-schema.json``, the Istio API schema `mesh check` validates against, from
Istio's own CRDs (issue 14 item 12: the cloudcoil models of Istio 1.24 refused fields
Istio has since added, and their 1.31 release needs Python 3.14).

    python -m mesh.check.istio_crd CRD_FILE COMMIT > mesh/check/istio-schema.json

CRD_FILE is istio/istio ``manifests/charts/base/files/crd-all.gen.yaml`` at COMMIT. For
every served version of every ``*.istio.io`` kind it keeps the ``openAPIV3Schema``,
without descriptions, made strict as ``kubectl apply --validate=strict`` reads it: an
object schema with ``properties`` refuses other keys unless it preserves unknown fields;
``nullable`` allows null; ``x-kubernetes-int-or-string`` is an integer or a string. The
CEL rules (``x-kubernetes-validations``) are left out: they need a CEL engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).with_name("istio-schema.json")
SOURCE = "istio/istio manifests/charts/base/files/crd-all.gen.yaml"
DROPPED = {"description", "x-kubernetes-validations", "example"}


def strict(node: Any) -> Any:
    """NODE (an OpenAPI v3 schema) as a strict JSON schema."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if k not in DROPPED}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        del out[key]
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def build(crd_text: str, commit: str) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for doc in yaml.safe_load_all(crd_text):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        if not str(spec.get("group", "")).endswith("istio.io"):
            continue
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = strict(version["schema"]["openAPIV3Schema"])
            # apiVersion, kind and metadata are the API server's, not the CRD's to judge
            schema.setdefault("properties", {}).update(
                {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {}}
            )
            kinds[f"{spec['group']}/{version['name']} {spec['names']['kind']}"] = schema
    return {"source": SOURCE, "commit": commit, "kinds": dict(sorted(kinds.items()))}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m mesh.check.istio_crd CRD_FILE COMMIT", file=sys.stderr)
        return 2
    data = build(Path(argv[0]).read_text(), argv[1])
    sys.stdout.write(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
