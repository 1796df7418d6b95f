"""mesh.translate: Istio semantics, not Envoy defaults (reference/istio-to-envoy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from mesh.manifests import load
from mesh.translate.clusters import MAX_U32
from mesh.translate.routes import DEFAULT_RETRY_ON
from tests.mesh.support import (
    BACKEND_LISTENER,
    GATEWAY_LISTENER,
    K8S,
    VARIANTS,
    backend_cluster,
    cluster,
    compose_config,
    dr_patch,
    hcm,
    listener,
    local_config,
    overlay,
    routes,
    vs_patch,
)

BACKEND_HOST = {"host": "backend-service"}


@pytest.fixture(scope="module", name="k8s")
def _k8s() -> dict[str, Any]:
    """The local translation of the repository's k8s/."""
    return local_config(K8S)


def endpoints(c: dict[str, Any]) -> list[str]:
    return [e["endpoint"]["hostname"] for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]]


def test_one_cluster_per_subset_with_the_matching_replicas(k8s: dict[str, Any]) -> None:
    m = load(K8S)
    replicas = {d.name: d.instance_names() for d in m.deployments}
    assert endpoints(cluster(k8s, backend_cluster("v1"))) == replicas["backend-v1"]
    assert endpoints(cluster(k8s, backend_cluster("v2"))) == replicas["backend-v2"]
    assert (
        endpoints(cluster(k8s, backend_cluster()))
        == replicas["backend-v1"] + replicas["backend-v2"]
    )
    front = cluster(k8s, "outbound|8000||frontend-service.default.svc.cluster.local")
    assert endpoints(front) == replicas["frontend"]


def test_cluster_defaults_are_istios(tmp_path: Path) -> None:
    d = overlay(tmp_path / "o", patches=[dr_patch("frontend", {"trafficPolicy": None})])
    c = cluster(local_config(d), "outbound|8000||frontend-service.default.svc.cluster.local")
    assert c["connect_timeout"] == "10s"
    assert c["lb_policy"] == "LEAST_REQUEST"
    assert c["type"] == "STATIC"
    assert c["circuit_breakers"]["thresholds"] == [
        {
            "max_connections": MAX_U32,
            "max_pending_requests": MAX_U32,
            "max_requests": MAX_U32,
            "max_retries": MAX_U32,
            "track_remaining": True,
        }
    ]
    assert "outlier_detection" not in c
    options = c["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["explicit_http_config"] == {"http_protocol_options": {}}


def test_destination_rule_values_reach_every_backend_cluster(k8s: dict[str, Any]) -> None:
    dr = load(K8S).destination_rules[0].spec["trafficPolicy"]
    for subset in ("", "v1", "v2"):
        c = cluster(k8s, backend_cluster(subset))
        t = c["circuit_breakers"]["thresholds"][0]
        assert t["max_connections"] == dr["connectionPool"]["tcp"]["maxConnections"]
        assert t["max_pending_requests"] == dr["connectionPool"]["http"]["http1MaxPendingRequests"]
        od = c["outlier_detection"]
        assert od["consecutive_5xx"] == dr["outlierDetection"]["consecutive5xxErrors"]
        assert od["enforcing_consecutive_5xx"] == 100
        assert od["enforcing_success_rate"] == 0
        assert od["max_ejection_percent"] == dr["outlierDetection"]["maxEjectionPercent"]
        assert c["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}


def test_circuit_breaker_variant_is_istios_task() -> None:
    c = cluster(local_config(VARIANTS / "circuit-breaker"), backend_cluster("v1"))
    t = c["circuit_breakers"]["thresholds"][0]
    assert (t["max_connections"], t["max_pending_requests"]) == (1, 1)
    assert t["max_requests"] == MAX_U32
    options = c["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["common_http_protocol_options"]["max_requests_per_connection"] == 1
    assert c["outlier_detection"]["consecutive_5xx"] == 1
    assert c["outlier_detection"]["base_ejection_time"] == "180s"
    assert c["outlier_detection"]["max_ejection_percent"] == 100


@pytest.mark.parametrize(
    ("outlier", "expected"),
    [
        ({"consecutive5xxErrors": 0}, {"consecutive_5xx": 0, "enforcing_consecutive_5xx": 0}),
        (
            {"consecutiveGatewayErrors": 2},
            {"consecutive_gateway_failure": 2, "enforcing_consecutive_gateway_failure": 100},
        ),
        ({"interval": "500ms", "baseEjectionTime": "1m"}, {"interval": "0.5s"}),
    ],
)
def test_outlier_detection_mapping(
    tmp_path: Path, outlier: dict[str, Any], expected: dict[str, Any]
) -> None:
    policy = {"trafficPolicy": {"outlierDetection": {**outlier, "minHealthPercent": 30}}}
    d = overlay(tmp_path / "o", patches=[dr_patch("frontend", policy)])
    c = cluster(local_config(d), "outbound|8000||frontend-service.default.svc.cluster.local")
    od = c["outlier_detection"]
    assert od["enforcing_success_rate"] == 0
    for key, value in expected.items():
        assert od[key] == value
    if "consecutive5xxErrors" not in outlier:
        assert "consecutive_5xx" not in od  # Envoy's own default then applies, as in Istio
    assert c["common_lb_config"]["healthy_panic_threshold"]["value"] == 30.0


def test_subset_policy_replaces_whole_blocks(tmp_path: Path) -> None:
    subsets = [
        {"name": "v1", "labels": {"version": "v1"}},
        {
            "name": "v2",
            "labels": {"version": "v2"},
            "trafficPolicy": {"connectionPool": {"http": {"http1MaxPendingRequests": 7}}},
        },
    ]
    d = overlay(tmp_path / "o", patches=[dr_patch("backend", {"subsets": subsets})])
    config = local_config(d)
    v2 = cluster(config, backend_cluster("v2"))["circuit_breakers"]["thresholds"][0]
    v1 = cluster(config, backend_cluster("v1"))["circuit_breakers"]["thresholds"][0]
    assert v2["max_pending_requests"] == 7
    assert v2["max_connections"] == MAX_U32  # the top-level tcp block is replaced, not merged
    assert v1["max_connections"] != MAX_U32
    assert "outlier_detection" in cluster(config, backend_cluster("v2"))  # inherited block


def test_canary_rule_is_an_exact_case_sensitive_header_match(k8s: dict[str, Any]) -> None:
    canary, stable = routes(k8s, BACKEND_LISTENER)
    assert canary["match"]["headers"] == [{"name": "x-canary", "string_match": {"exact": "true"}}]
    assert canary["route"]["cluster"] == backend_cluster("v2")
    assert "headers" not in stable["match"]
    assert stable["route"]["cluster"] == backend_cluster("v1")
    for r in (canary, stable):
        assert r["match"]["case_sensitive"] is True


def test_vs_retries_and_timeout(k8s: dict[str, Any]) -> None:
    rule = load(K8S).virtual_services[1].spec["http"][0]
    route = routes(k8s, BACKEND_LISTENER)[0]["route"]
    assert route["timeout"] == rule["timeout"]
    policy = route["retry_policy"]
    assert policy["num_retries"] == rule["retries"]["attempts"]
    assert policy["retry_on"] == rule["retries"]["retryOn"]
    assert policy["per_try_timeout"] == rule["retries"]["perTryTimeout"]
    assert policy["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
    assert policy["host_selection_retry_max_attempts"] == 5


def test_defaults_without_timeout_or_retries(tmp_path: Path) -> None:
    http = [
        {"route": [{"destination": {**BACKEND_HOST, "subset": "v1"}}]},
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    route = routes(config, BACKEND_LISTENER)[0]["route"]
    assert route["timeout"] == "0s"  # never Envoy's 15s
    assert route["retry_policy"]["retry_on"] == DEFAULT_RETRY_ON
    assert route["retry_policy"]["num_retries"] == 2
    assert "retriable_status_codes" not in route["retry_policy"]  # 503 not retried (1.24+)


def test_retry_on_status_codes_and_zero_attempts(tmp_path: Path) -> None:
    http = [
        {
            "match": [{"uri": {"prefix": "/a"}}],
            "route": [{"destination": BACKEND_HOST}],
            "retries": {"attempts": 3, "retryOn": "gateway-error,503"},
        },
        {"route": [{"destination": BACKEND_HOST}], "retries": {"attempts": 0}},
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    first, second = routes(config, BACKEND_LISTENER)
    policy = first["route"]["retry_policy"]
    assert policy["retry_on"] == "gateway-error,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert "retry_policy" not in second["route"]


def test_no_virtual_service_gives_istios_default_route(tmp_path: Path) -> None:
    m = load(K8S)
    m.objects = [o for o in m.objects if not (o.kind == "VirtualService" and o.name == "backend")]
    (route,) = routes(local_config(m), BACKEND_LISTENER)
    assert route["name"] == "default"
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["cluster"] == backend_cluster()
    assert route["route"]["timeout"] == "0s"


def test_route_tables_do_not_validate_clusters(k8s: dict[str, Any]) -> None:
    for entry in k8s["static_resources"]["listeners"]:
        config = entry["filter_chains"][0]["filters"][0]["typed_config"]
        assert config["route_config"]["validate_clusters"] is False
        assert [f["name"] for f in config["http_filters"]] == [
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            "envoy.filters.http.router",
        ]
        assert config["generate_request_id"] is True
        assert config["route_config"]["virtual_hosts"][0]["include_request_attempt_count"]


def test_undefined_subset_routes_to_a_missing_cluster(tmp_path: Path) -> None:
    http = [{"route": [{"destination": {**BACKEND_HOST, "subset": "v9"}}]}]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    assert routes(config, BACKEND_LISTENER)[0]["route"]["cluster"] == backend_cluster("v9")
    names = {c["name"] for c in config["static_resources"]["clusters"]}
    assert backend_cluster("v9") not in names


def test_weighted_variant_and_zero_weights(tmp_path: Path) -> None:
    canary, split = routes(local_config(VARIANTS / "weighted"), BACKEND_LISTENER)
    assert canary["route"]["cluster"] == backend_cluster("v2")
    assert split["route"]["weighted_clusters"]["clusters"] == [
        {"name": backend_cluster("v1"), "weight": 90},
        {"name": backend_cluster("v2"), "weight": 10},
    ]
    http = [
        {
            "route": [
                {"destination": {**BACKEND_HOST, "subset": "v1"}, "weight": 0},
                {"destination": {**BACKEND_HOST, "subset": "v2"}, "weight": 5},
            ]
        }
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    clusters = routes(config, BACKEND_LISTENER)[0]["route"]["weighted_clusters"]["clusters"]
    assert clusters == [{"name": backend_cluster("v2"), "weight": 5}]


def test_matches_headers_ops_and_rewrites(tmp_path: Path) -> None:
    http = [
        {
            "name": "r",
            "match": [
                {
                    "name": "m",
                    "uri": {"exact": "/api/tasks"},
                    "method": {"exact": "GET"},
                    "headers": {"b-h": {"prefix": "x"}, "a-h": {"regex": "v[0-9]"}, "c-h": {}},
                    "withoutHeaders": {"d-h": {"exact": "no"}},
                    "queryParams": {"q": {"exact": "1"}},
                    "ignoreUriCase": True,
                },
                {"uri": {"regex": "/x.*"}},
            ],
            "route": [{"destination": BACKEND_HOST}],
            "rewrite": {"uri": "/v2/", "authority": "example"},
            "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-b"]}},
        }
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    first, second = routes(config, BACKEND_LISTENER)
    assert first["name"] == "r.m"
    match = first["match"]
    assert match["path"] == "/api/tasks"
    assert match["case_sensitive"] is False
    assert [h["name"] for h in match["headers"]] == [":method", "a-h", "b-h", "c-h", "d-h"]
    by_name = {h["name"]: h for h in match["headers"]}
    assert by_name["a-h"]["string_match"] == {"safe_regex": {"regex": "v[0-9]"}}
    assert by_name["c-h"] == {"name": "c-h", "present_match": True}
    assert by_name["d-h"]["invert_match"] is True
    assert match["query_parameters"] == [{"name": "q", "string_match": {"exact": "1"}}]
    assert second["match"]["safe_regex"] == {"regex": "/x.*"}
    assert first["route"]["prefix_rewrite"] == "/v2/"
    assert first["route"]["host_rewrite_literal"] == "example"
    assert first["request_headers_to_add"] == [
        {"header": {"key": "x-a", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    ]
    assert first["request_headers_to_remove"] == ["x-b"]


def test_gateway_listener_routes_the_bound_virtual_service(k8s: dict[str, Any]) -> None:
    config = hcm(k8s, GATEWAY_LISTENER)
    assert config["use_remote_address"] is True
    (vhost,) = config["route_config"]["virtual_hosts"]
    assert vhost["domains"] == ["*"]
    admin, front = vhost["routes"]
    assert admin["direct_response"] == {"status": 404}
    assert admin["match"]["prefix"] == "/admin"
    assert front["route"]["cluster"] == "outbound|8000||frontend-service.default.svc.cluster.local"
    port = listener(k8s, GATEWAY_LISTENER)["address"]["socket_address"]
    assert port == {"address": "127.0.0.1", "port_value": 8080}


def test_gateway_without_virtual_service_is_a_blackhole(tmp_path: Path) -> None:
    m = load(K8S)
    m.objects = [o for o in m.objects if not (o.kind == "VirtualService" and o.name == "frontend")]
    (vhost,) = hcm(local_config(m), GATEWAY_LISTENER)["route_config"]["virtual_hosts"]
    assert vhost["name"] == "blackhole:80"
    assert vhost["routes"] == []


def test_access_log_is_istios_text_format(k8s: dict[str, Any]) -> None:
    log = hcm(k8s, BACKEND_LISTENER)["access_log"][0]["typed_config"]
    text = log["log_format"]["text_format_source"]["inline_string"]
    assert "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%" in text
    assert text.rstrip("\n").endswith("%ROUTE_NAME%")


def test_compose_target_uses_container_names_and_all_interfaces() -> None:
    config = compose_config(K8S)
    c = cluster(config, backend_cluster("v1"))
    assert c["type"] == "STRICT_DNS"
    sockets = [
        e["endpoint"]["address"]["socket_address"]
        for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    assert sockets == [
        {"address": "backend-v1-0", "port_value": 5000},
        {"address": "backend-v1-1", "port_value": 5000},
    ]
    assert config["admin"]["address"]["socket_address"] == {
        "address": "0.0.0.0",
        "port_value": 15000,
    }
    assert listener(config, BACKEND_LISTENER)["address"]["socket_address"]["address"] == "0.0.0.0"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (
            vs_patch(
                "backend",
                [
                    {
                        "route": [{"destination": BACKEND_HOST}],
                        "retries": {"attempts": 1, "retryRemoteLocalities": True},
                    }
                ],
            ),
            "VirtualService/backend: spec.http[0].retries.retryRemoteLocalities is not supported "
            "by the local mesh",
        ),
        (
            vs_patch("backend", [{"route": [{"destination": BACKEND_HOST}]}], tcp=[{}]),
            "VirtualService/backend: spec.tcp is not supported by the local mesh",
        ),
        (
            dr_patch("backend", {"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            "DestinationRule/backend: spec.trafficPolicy.tls is not supported by the local mesh",
        ),
        (
            dr_patch("backend", {"trafficPolicy": {"outlierDetection": {"consecutiveErrors": 1}}}),
            "spec.trafficPolicy.outlierDetection.consecutiveErrors is deprecated",
        ),
        (
            dr_patch("backend", {"trafficPolicy": {"loadBalancer": {"consistentHash": {}}}}),
            "spec.trafficPolicy.loadBalancer.consistentHash is not supported",
        ),
        (
            vs_patch("backend", [{"route": [{"destination": {"host": "nowhere"}}]}]),
            "spec.http[0].route[0].destination.host 'nowhere' matches no Service",
        ),
        (
            vs_patch(
                "backend",
                [
                    {
                        "match": [{"sourceLabels": {"a": "b"}}],
                        "route": [{"destination": BACKEND_HOST}],
                    }
                ],
            ),
            "spec.http[0].match[0].sourceLabels is not supported",
        ),
    ],
)
def test_unsupported_fields_name_file_resource_and_field(
    tmp_path: Path, patch: dict[str, Any], field: str
) -> None:
    with pytest.raises(TranslationError) as err:
        local_config(overlay(tmp_path / "o", patches=[patch]))
    message = str(err.value)
    assert field in message
    kind = patch["kind"].lower()
    assert message.startswith(str(Path("k8s/istio") / f"{kind}-backend.yaml")) or (
        f"{kind}-backend.yaml" in message.split(":")[0]
    )
