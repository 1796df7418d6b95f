"""Flagger's kinds in `mesh check`: the kept schema (its source, version and that it is
what the generator makes of the pinned CRD), strictness, and the branches of the Canary
rules that the broken/fixed fixtures of test_rules.py do not cover."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.check import CODES, Finding, Severity
from mesh.check.flagger import check_schema, schema_file, schema_version
from mesh.check.flagger_crd import SCHEMA_FILE, build, dumps, main, strict
from mesh.check.index import Index
from mesh.check.loader import Resource
from mesh.check.rules import progressive
from mesh.cli import main as mesh_main

HERE = Path(__file__).parent
CRD = HERE / "flagger" / "crd-v1.44.0.yaml"
BASE = HERE / "fixtures" / "flagger-base"
COMMIT = "15bd6ad555e6c935da55f0ab95977be74c149bd6"


# --- the kept schema ---------------------------------------------------------------


def test_kept_schema_is_the_generators_output_of_the_pinned_crd() -> None:
    assert SCHEMA_FILE.read_text() == dumps(build(CRD.read_text(), "v1.44.0", COMMIT))


def test_kept_schema_names_its_source_and_version() -> None:
    data = schema_file()
    assert data["version"] == schema_version() == "v1.44.0"
    assert data["source"] == (
        "https://github.com/fluxcd/flagger/blob/v1.44.0/artifacts/flagger/crd.yaml"
    )
    assert data["commit"] == COMMIT
    assert sorted(data["kinds"]) == [
        "flagger.app/v1beta1 AlertProvider",
        "flagger.app/v1beta1 Canary",
        "flagger.app/v1beta1 MetricTemplate",
    ]


def test_codes_list_names_the_schema_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert schema_version() in CODES["TM301"]
    assert mesh_main(["check", "--codes"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("TM301")]
    assert f"Flagger {schema_version()}" in line


def test_version_names_the_flagger_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_main(["check", "--version"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("Flagger")]
    assert line == (
        "Flagger: v1.44.0 (https://github.com/fluxcd/flagger/blob/v1.44.0/artifacts/flagger/"
        "crd.yaml, its CRDs' schemas)"
    )


def test_generator_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    args = [str(CRD), "--version", "v1.44.0", "--commit", COMMIT, "--output", str(out)]
    assert main(args) == 0
    assert out.read_text() == SCHEMA_FILE.read_text()


def test_strict_conversion() -> None:
    schema = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "maybe": {"type": "string", "nullable": True},
            "rule": {"type": "object", "x-kubernetes-validations": [{"rule": "true"}]},
            "pick": {"type": "object", "oneOf": [{"properties": {"a": {"type": "string"}}}]},
        },
    }
    out = strict(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in out["properties"]["free"]
    assert out["properties"]["maybe"]["type"] == ["string", "null"]
    assert out["properties"]["rule"] == {"type": "object"}
    assert "additionalProperties" not in out["properties"]["pick"]["oneOf"][0]


# --- schema findings ------------------------------------------------------------------


def base_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in ("workloads.yaml", "istio.yaml", "flagger.yaml"):
        docs += [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]
    return docs


def resources(docs: list[dict[str, Any]]) -> list[Resource]:
    return [
        Resource(doc=d, file="test.yaml", namespace="default", index=i) for i, d in enumerate(docs)
    ]


def canary_doc(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Canary")


def schema_messages(doc: dict[str, Any]) -> list[str]:
    (res,) = resources([doc])
    findings = list(check_schema(res))
    assert {(f.code, f.severity) for f in findings} <= {("TM301", Severity.ERROR)}
    return [f.message for f in findings]


def test_base_canary_and_template_pass_the_schema() -> None:
    for doc in base_docs():
        if doc["apiVersion"].startswith("flagger.app/"):
            assert schema_messages(doc) == []


def test_schema_reports_every_error_and_names_unknown_fields() -> None:
    doc = copy.deepcopy(canary_doc(base_docs()))
    doc["spec"]["analysis"]["interval"] = "30 seconds"
    doc["spec"]["service"]["prot"] = 5000
    doc["spec"]["targetRef"]["kind"] = "StatefulSet"
    messages = schema_messages(doc)
    assert any(
        m.startswith("spec.analysis.interval: '30 seconds' does not match") for m in messages
    )
    assert "spec.service: unknown field 'prot'" in messages
    assert any(m.startswith("spec.targetRef.kind: 'StatefulSet' is not one of") for m in messages)


def test_schema_needs_exactly_one_kind_of_step() -> None:
    doc = copy.deepcopy(canary_doc(base_docs()))
    doc["spec"]["analysis"]["stepWeight"] = 10  # and stepWeights: both
    (message,) = schema_messages(doc)
    assert message.startswith("spec.analysis: must set exactly one of: interval + threshold")


def test_target_port_is_int_or_string() -> None:
    doc = copy.deepcopy(canary_doc(base_docs()))
    doc["spec"]["service"]["targetPort"] = 5000
    assert schema_messages(doc) == []
    doc["spec"]["service"]["targetPort"] = 5.5
    assert schema_messages(doc)


def test_unknown_flagger_version_is_an_error() -> None:
    doc = copy.deepcopy(canary_doc(base_docs()))
    doc["apiVersion"] = "flagger.app/v1alpha3"
    (message,) = schema_messages(doc)
    assert message.startswith("unknown Flagger apiVersion/kind flagger.app/v1alpha3 Canary")


# --- rule branches --------------------------------------------------------------------


def rule(docs: list[dict[str, Any]]) -> list[Finding]:
    return list(progressive.check(Index(resources(docs))))


def test_rule_finds_nothing_in_the_base() -> None:
    assert rule(base_docs()) == []


def test_missing_autoscaler_is_tm302() -> None:
    docs = base_docs()
    canary_doc(docs)["spec"]["autoscalerRef"] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "backend",
    }
    (finding,) = rule(docs)
    assert (finding.code, finding.severity) == ("TM302", Severity.ERROR)
    assert "HorizontalPodAutoscaler backend not found" in finding.message


def test_port_number_and_protocol_name_are_warnings() -> None:
    docs = base_docs()
    canary_doc(docs)["spec"]["service"].update(targetPort=8080, portName="web")
    findings = rule(docs)
    assert [(f.code, f.severity) for f in findings] == [("TM304", Severity.WARNING)] * 2
    assert "declares no container port 8080" in findings[0].message
    assert "Istio treats the generated Services' traffic as TCP" in findings[1].message
    canary_doc(docs)["spec"]["service"].update(targetPort=5000, appProtocol="http")
    assert rule(docs) == []


def test_hand_written_service_and_destination_rule_are_warnings() -> None:
    docs = base_docs()
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "backend-service"},
            "spec": {"selector": {"app": "backend"}, "ports": [{"name": "http", "port": 5000}]},
        }
    )
    docs.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "backend"},
            "spec": {"host": "backend-service"},
        }
    )
    found = {(f.code, f.severity, f"{f.kind}/{f.name}") for f in rule(docs)}
    assert found == {
        ("TM305", Severity.WARNING, "Service/backend-service"),
        ("TM305", Severity.WARNING, "DestinationRule/backend"),
    }


def test_virtual_service_bound_to_gateways_only_is_no_conflict() -> None:
    docs = base_docs()
    edge = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "edge"},
        "spec": {"hosts": ["backend-service"], "gateways": ["taskmesh-gateway"], "http": []},
    }
    assert rule([*docs, edge]) == []
    edge["spec"]["gateways"] = ["taskmesh-gateway", "mesh"]
    assert [f.code for f in rule([*docs, edge])] == ["TM305"]


def test_delegation_needs_a_root_virtual_service() -> None:
    docs = base_docs()
    canary_doc(docs)["spec"]["service"]["delegation"] = True
    (finding,) = rule(docs)
    assert (finding.code, finding.severity) == ("TM306", Severity.ERROR)
    root = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "root"},
        "spec": {
            "hosts": ["backend.example.com"],
            "gateways": ["taskmesh-gateway"],
            "http": [{"delegate": {"name": "backend-service", "namespace": "default"}}],
        },
    }
    assert rule([*docs, root]) == []


def test_gateway_in_a_namespace_outside_the_manifests_is_not_judged() -> None:
    docs = base_docs()
    canary_doc(docs)["spec"]["service"]["gateways"] = ["istio-system/public-gateway"]
    assert rule(docs) == []


def test_metric_without_template_query_or_builtin_name_is_tm307() -> None:
    docs = base_docs()
    metrics = canary_doc(docs)["spec"]["analysis"]["metrics"]
    metrics.append({"name": "p99", "thresholdRange": {"max": 500}})
    (finding,) = rule(docs)
    assert (finding.code, finding.severity) == ("TM307", Severity.ERROR)
    assert "'p99' has no templateRef and no query" in finding.message
    metrics[-1]["query"] = "histogram_quantile(0.99, ...)"
    assert rule(docs) == []


def test_missing_alert_provider_is_tm307() -> None:
    docs = base_docs()
    canary_doc(docs)["spec"]["analysis"]["alerts"] = [
        {"name": "on-call", "severity": "error", "providerRef": {"name": "slack"}}
    ]
    (finding,) = rule(docs)
    assert "AlertProvider default/slack not found" in finding.message
    provider = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "slack"},
        "spec": {"type": "slack", "address": "https://hooks.slack.com/services/x"},
    }
    assert schema_messages(provider) == []
    assert rule([*docs, provider]) == []


def test_kept_schema_is_valid_json_schema() -> None:
    import jsonschema

    for schema in json.loads(SCHEMA_FILE.read_text())["kinds"].values():
        jsonschema.Draft7Validator.check_schema(schema)
