"""Telemetry API tracing -> each listener's HCM tracing block, as istiod merges and builds it
(mesh/translate/telemetry.py): rates, precedence of root namespace over namespace, match
modes, disabled spans, custom tags, and the refusals."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.errors import TranslationError
from mesh.manifests import load
from mesh.sidecars import prepare
from mesh.sidecars.bootstrap import INBOUND_LISTENER
from mesh.translate import local_placement, translate
from mesh.translate.placement import sequential_instance_ports
from mesh.translate.tracing import SERVICE_TAG
from tests.mesh import support
from tests.mesh.support import overlay

APP_NS = "default"
GATEWAY = "gateway_80"
OUTBOUND = "outbound_backend-service.default.svc.cluster.local:5000"


def telemetry(name: str, tracing: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return support.telemetry(name, spec.pop("namespace", None), tracing=tracing, **spec)


def ns_tracing(tracing: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A patch giving k8s/'s namespace-wide Telemetry (access-logs) TRACING: istiod takes
    one namespace-wide Telemetry per namespace, the first by creation time then name."""
    return telemetry("access-logs", tracing, **spec)


def tracing_blocks(
    tmp_path: Path, *extra: dict[str, Any], patch: dict[str, Any] | None = None
) -> dict[str, dict[str, Any] | None]:
    """Listener name -> its HCM tracing block (None: none), for k8s/ plus EXTRA and PATCH."""
    tree = overlay(tmp_path / "o", patches=[patch] if patch else None, extra=list(extra))
    manifests = load(tree)
    placement = local_placement(manifests, sequential_instance_ports(manifests), traces_port=4999)
    out = {}
    for listener in translate(manifests, placement)["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                out[listener["name"]] = f["typed_config"].get("tracing")
    return out


def rate(block: dict[str, Any] | None) -> float | None:
    return None if block is None else block["random_sampling"]["value"]


def test_no_telemetry_tracing_keeps_the_demo_profile_rate(tmp_path: Path) -> None:
    blocks = tracing_blocks(tmp_path)
    assert rate(blocks[GATEWAY]) == 100.0
    assert rate(blocks[OUTBOUND]) == 100.0


def test_namespace_telemetry_at_1_percent(tmp_path: Path) -> None:
    t = ns_tracing([{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 1}])
    blocks = tracing_blocks(tmp_path, patch=t)
    assert rate(blocks[OUTBOUND]) == 1.0
    # the gateway runs in the root namespace: the app namespace's Telemetry does not reach it
    assert rate(blocks[GATEWAY]) == 100.0


def test_root_namespace_applies_to_all_and_the_namespace_overrides(tmp_path: Path) -> None:
    root = telemetry(
        "mesh-default",
        [{"providers": [{"name": "otel-tracing"}], "randomSamplingPercentage": 10}],
        namespace="istio-system",
    )
    assert rate(tracing_blocks(tmp_path / "a", root)[OUTBOUND]) == 10.0
    ns = ns_tracing([{"randomSamplingPercentage": 0.5}])  # provider from the root's
    blocks = tracing_blocks(tmp_path / "b", root, patch=ns)
    assert rate(blocks[GATEWAY]) == 10.0
    assert rate(blocks[OUTBOUND]) == 0.5


def test_a_second_namespace_wide_telemetry_is_not_used(tmp_path: Path) -> None:
    # istiod's namespaceWideTelemetryConfig: the first (access-logs < zz-rate) only
    t = telemetry("zz-rate", [{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 1}])
    assert rate(tracing_blocks(tmp_path, t)[OUTBOUND]) == 100.0


def test_entries_without_a_provider_turn_tracing_off(tmp_path: Path) -> None:
    # istiod: Telemetry tracing present, no provider and no default provider -> disabled
    blocks = tracing_blocks(tmp_path, patch=ns_tracing([{"randomSamplingPercentage": 1}]))
    assert blocks[OUTBOUND] is None
    assert rate(blocks[GATEWAY]) == 100.0


def test_match_mode_server_leaves_client_listeners_without_a_provider(tmp_path: Path) -> None:
    t = ns_tracing(
        [
            {"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 5},
            {"match": {"mode": "SERVER"}, "randomSamplingPercentage": 50},
        ],
    )
    assert rate(tracing_blocks(tmp_path, patch=t)[OUTBOUND]) == 5.0


def test_disable_span_reporting_drops_the_block(tmp_path: Path) -> None:
    t = ns_tracing([{"providers": [{"name": "zipkin"}], "disableSpanReporting": True}])
    assert tracing_blocks(tmp_path, patch=t)[OUTBOUND] is None


def test_custom_tags_literal_and_header_sorted_after_istios(tmp_path: Path) -> None:
    tags = {
        "team": {"literal": {"value": "tasks"}},
        "agent": {"header": {"name": "user-agent", "defaultValue": "none"}},
    }
    t = ns_tracing([{"providers": [{"name": "zipkin"}], "customTags": tags}])
    block = tracing_blocks(tmp_path, patch=t)[OUTBOUND]
    assert block is not None
    assert [tag["tag"] for tag in block["custom_tags"]] == ["agent", SERVICE_TAG, "team"]
    by_name = {tag["tag"]: tag for tag in block["custom_tags"]}
    assert by_name["agent"]["request_header"] == {"name": "user-agent", "default_value": "none"}
    assert by_name["team"]["literal"] == {"value": "tasks"}
    assert rate(block) == 100.0


@pytest.mark.parametrize(
    ("spec", "tracing", "field"),
    [
        ({"selector": {"matchLabels": {"app": "backend"}}}, [{}], "spec.selector"),
        ({}, [{"providers": [{"name": "skywalking"}]}], "spec.tracing[0].providers[0].name"),
        ({}, [{"useRequestIdForTraceSampling": False}], "spec.tracing[0].useRequestIdForTrace"),
        ({}, [{"randomSamplingPercentage": 150}], "spec.tracing[0].randomSamplingPercentage"),
        (
            {},
            [{"customTags": {"pod": {"environment": {"name": "POD_NAME"}}}}],
            "spec.tracing[0].customTags.pod.environment",
        ),
    ],
)
def test_refused_by_file_kind_and_field(
    tmp_path: Path, spec: dict[str, Any], tracing: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(TranslationError) as err:
        tracing_blocks(tmp_path, telemetry("bad", tracing, **spec))
    text = str(err.value)
    assert "extra.yaml" in text and "Telemetry" in text and field in text, text


def test_sidecar_inbound_listeners_take_the_server_mode(tmp_path: Path) -> None:
    """`mesh up --sidecars`: the inbound listener is SERVER, the outbound ones CLIENT."""
    t = ns_tracing(
        [
            {"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 5},
            {"match": {"mode": "SERVER"}, "randomSamplingPercentage": 50},
        ],
    )
    manifests = load(overlay(tmp_path / "o", patches=[t]))
    ports = itertools.count(31000)
    apps = {i: next(ports) for d in manifests.deployments for i in d.instance_names()}
    setup = prepare(
        manifests, apps, tmp_path / "state", lambda: next(ports), traces=("127.0.0.1", 4999)
    )
    sidecar = next(s for s in setup.sidecars if s.instance.startswith("backend"))
    config = yaml.safe_load(setup.configs[sidecar.name].read_text())
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    hcm = listeners[INBOUND_LISTENER]["filter_chains"][0]["filters"][0]["typed_config"]
    assert rate(hcm["tracing"]) == 50.0
