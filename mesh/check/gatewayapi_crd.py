"""The Gateway API's kinds as JSON Schema, from its own CRDs: the schema `mesh check` keeps.

``mesh/check/gateway-api-schema.json`` holds the ``openAPIV3Schema`` of every served
version of every kind in the **standard channel** CRDs (``config/crd/standard/*.yaml``) of
the kubernetes-sigs/gateway-api release that Istio's current release is built against
(istio/istio 1.30's go.mod: ``sigs.k8s.io/gateway-api v1.5.1``; the CRDs Istio's docs
install with ``kubectl kustomize "github.com/kubernetes-sigs/gateway-api/config/crd?ref=
v1.5.1"``). Made strict as Flagger's are (mesh.check.flagger_crd.strict): unknown fields
refused, CEL rules (``x-kubernetes-validations``) dropped, no API server here to run them.

Regenerate after bumping the release, offline from a checkout of that tag::

    python -m mesh.check.gatewayapi_crd config/crd/standard/*.yaml --version v1.5.1 --commit SHA
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mesh.check.flagger_crd import schemas_from_crds

SCHEMA_FILE = Path(__file__).with_name("gateway-api-schema.json")
SOURCE = "https://github.com/kubernetes-sigs/gateway-api/tree/{version}/config/crd/standard"
ISTIO_RELEASE = "1.30"  # whose go.mod names the release above


def build(crd_texts: list[str], version: str, commit: str) -> dict[str, Any]:
    documents = [doc for text in crd_texts for doc in yaml.safe_load_all(text)]
    return {
        "source": SOURCE.format(version=version),
        "version": version,
        "commit": commit,
        "istio": ISTIO_RELEASE,
        "generator": "python -m mesh.check.gatewayapi_crd",
        "kinds": schemas_from_crds(documents),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.check.gatewayapi_crd", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("crds", type=Path, nargs="+", help="config/crd/standard/*.yaml")
    parser.add_argument("--version", required=True, help="the release tag, e.g. v1.5.1")
    parser.add_argument("--commit", required=True, help="the tag's commit")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    data = build([p.read_text() for p in sorted(args.crds)], args.version, args.commit)
    args.output.write_text(json.dumps(data, separators=(",", ":")) + "\n")  # ~0.4 MB
    print(f"{args.output}: {', '.join(data['kinds'])} from {data['source']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
