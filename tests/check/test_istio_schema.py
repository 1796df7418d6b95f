"""Istio kinds are checked against Istio's own current CRD schemas (issue 14 item 12):
fields Istio added since the old models (retries.backoff, retryIgnorePreviousHosts, integer
portLevelMtls keys) are valid, typos and wrong values are still IST0106, and
`mesh check --version` names the schema's source."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.check import check_tree
from mesh.check.istio_crd import strict
from mesh.check.schema import istio_schema
from mesh.cli import main

VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [x.example.com]
  http:
    - route: [{destination: {host: x.example.com}}]
      retries: {attempts: 2, backoff: 25ms, retryIgnorePreviousHosts: false%s}
"""
PA = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p}
spec:
  selector: {matchLabels: {app: backend}}
  portLevelMtls:
    8080: {mode: DISABLE}
"""


def schema_errors(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "x.yaml").write_text(text)
    return [f.message for f in check_tree(tmp_path / "x.yaml") if f.code == "IST0106"]


def test_fields_newer_than_the_old_models_are_valid(tmp_path: Path) -> None:
    assert schema_errors(tmp_path, VS % "") == []
    assert schema_errors(tmp_path, PA) == []


def test_typos_and_wrong_values_are_still_schema_errors(tmp_path: Path) -> None:
    assert schema_errors(tmp_path, VS % ", atempts: 3") == [
        "spec.http[0].retries.atempts: unknown field"
    ]
    match = VS.replace("- route:", "- match: [{uri: {exact: /a, prefix: /b}}]\n      route:")
    assert schema_errors(tmp_path, match % "") == [
        "spec.http[0].match[0].uri: set only one of exact, prefix"
    ]
    typed = VS.replace("attempts: 2", "attempts: two")
    assert schema_errors(tmp_path, typed % "") == [
        "spec.http[0].retries.attempts: 'two' is not of type 'integer'"
    ]


def test_the_schema_covers_every_kind_the_local_mesh_reads() -> None:
    kinds = istio_schema()["kinds"]
    for kind in ("Gateway", "VirtualService", "DestinationRule", "ServiceEntry", "Sidecar"):
        assert f"networking.istio.io/v1 {kind}" in kinds
    for kind in ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"):
        assert f"security.istio.io/v1 {kind}" in kinds
    assert "telemetry.istio.io/v1 Telemetry" in kinds


def test_strict_reads_the_kubernetes_extensions() -> None:
    assert strict({"type": "object", "properties": {"a": {"type": "string"}}}) == {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    }
    assert strict(
        {"type": "object", "properties": {}, "x-kubernetes-preserve-unknown-fields": True}
    ) == {
        "type": "object",
        "properties": {},
    }
    assert strict({"type": "boolean", "nullable": True}) == {"type": ["boolean", "null"]}
    assert strict({"x-kubernetes-int-or-string": True, "type": "string"}) == {
        "anyOf": [{"type": "integer"}, {"type": "string"}]
    }


def test_version_names_the_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--version"]) == 0
    out = capsys.readouterr().out
    source = "istio/istio manifests/charts/base/files/crd-all.gen.yaml"
    assert f"Istio API: {source} at {istio_schema()['commit']}" in out
    assert "Kubernetes: 1.30.0" in out
