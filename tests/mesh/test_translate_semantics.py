"""Smaller Istio semantics the translation follows (issue 14 item 7).

Sources: pilot/pkg/networking/util/util.go (GetPortLevelTrafficPolicy,
MergeSubsetTrafficPolicy), pilot/pkg/model/destination_rule.go (MergeTrafficPolicy),
pilot/pkg/networking/core/cluster_traffic_policy.go (shouldH2Upgrade), route/route.go
(route names, processDestination), pkg/config/validation/virtualservice.go
(validateHTTPRouteMatchRequest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from mesh.translate.clusters import MAX_U32
from tests.mesh.support import (
    BACKEND_LISTENER,
    backend_cluster,
    cluster,
    dr_patch,
    local_config,
    overlay,
    routes,
    vs_patch,
)

BACKEND_HOST = {"host": "backend-service"}
TOP = {
    "connectionPool": {"tcp": {"maxConnections": 3}},
    "outlierDetection": {"consecutive5xxErrors": 2, "maxEjectionPercent": 50},
}
SERVICE_PORT_GRPC = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "backend-service"},
    "spec": {"ports": [{"name": "grpc", "appProtocol": "grpc", "port": 5000}]},
}


def http_options(c: dict[str, Any]) -> dict[str, Any]:
    return c["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]


def test_subset_port_level_settings_replace_every_block(tmp_path: Path) -> None:
    subsets = [
        {"name": "v1", "labels": {"version": "v1"}},
        {
            "name": "v2",
            "labels": {"version": "v2"},
            "trafficPolicy": {
                "portLevelSettings": [
                    {"port": {"number": 5000}, "loadBalancer": {"simple": "ROUND_ROBIN"}},
                    {"port": {"number": 5000}, "loadBalancer": {"simple": "RANDOM"}},
                ]
            },
        },
    ]
    patch = dr_patch("backend", {"trafficPolicy": TOP, "subsets": subsets})
    config = local_config(overlay(tmp_path / "o", patches=[patch]))
    v2 = cluster(config, backend_cluster("v2"))
    assert v2["lb_policy"] == "ROUND_ROBIN"  # the first entry for the port wins
    assert "outlier_detection" not in v2  # unset in the port-level policy: not inherited
    assert v2["circuit_breakers"]["thresholds"][0]["max_connections"] == MAX_U32
    v1 = cluster(config, backend_cluster("v1"))
    assert v1["circuit_breakers"]["thresholds"][0]["max_connections"] == 3
    assert v1["outlier_detection"]["consecutive_5xx"] == 2


def test_subset_policy_without_port_level_settings_merges_block_by_block(
    tmp_path: Path,
) -> None:
    subsets = [
        {
            "name": "v2",
            "labels": {"version": "v2"},
            "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
        }
    ]
    patch = dr_patch("backend", {"trafficPolicy": TOP, "subsets": subsets})
    v2 = cluster(local_config(overlay(tmp_path / "o", patches=[patch])), backend_cluster("v2"))
    assert v2["lb_policy"] == "RANDOM"
    assert v2["outlier_detection"]["consecutive_5xx"] == 2
    assert v2["circuit_breakers"]["thresholds"][0]["max_connections"] == 3


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("DO_NOT_UPGRADE", {"explicit_http_config": {"http2_protocol_options": {}}}),
        ("DEFAULT", {"explicit_http_config": {"http2_protocol_options": {}}}),
        ("UPGRADE", {"explicit_http_config": {"http2_protocol_options": {}}}),
    ],
)
def test_do_not_upgrade_keeps_a_grpc_port_on_http2(
    tmp_path: Path, policy: str, expected: dict[str, Any]
) -> None:
    pool = {"connectionPool": {"http": {"h2UpgradePolicy": policy}}}
    patches = [SERVICE_PORT_GRPC, dr_patch("backend", {"trafficPolicy": pool})]
    c = cluster(local_config(overlay(tmp_path / "o", patches=patches)), backend_cluster())
    options = http_options(c)
    assert {k: v for k, v in options.items() if k.endswith("http_config")} == expected


def test_do_not_upgrade_keeps_an_http_port_on_http1(tmp_path: Path) -> None:
    pool = {"connectionPool": {"http": {"h2UpgradePolicy": "DO_NOT_UPGRADE"}}}
    patch = dr_patch("backend", {"trafficPolicy": pool})
    c = cluster(local_config(overlay(tmp_path / "o", patches=[patch])), backend_cluster())
    assert http_options(c)["explicit_http_config"] == {"http_protocol_options": {}}


def test_a_destinations_header_set_wins_over_the_rules(tmp_path: Path) -> None:
    http = [
        {
            "headers": {"request": {"set": {"x-who": "rule"}}},
            "route": [
                {
                    "destination": BACKEND_HOST,
                    "headers": {"request": {"set": {"x-who": "destination"}}},
                }
            ],
        }
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    (route,) = routes(config, BACKEND_LISTENER)
    # Envoy applies the list in order: the last OVERWRITE of x-who is what upstream sees
    assert [h["header"] for h in route["request_headers_to_add"]] == [
        {"key": "x-who", "value": "rule"},
        {"key": "x-who", "value": "destination"},
    ]


def test_a_match_name_without_a_rule_name_is_dot_name(tmp_path: Path) -> None:
    http = [
        {
            "match": [{"name": "canary", "headers": {"x-canary": {"exact": "true"}}}],
            "route": [{"destination": BACKEND_HOST}],
        },
        {"route": [{"destination": BACKEND_HOST}]},
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    first, second = routes(config, BACKEND_LISTENER)
    assert first["name"] == ".canary"
    assert "name" not in second


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"uri": {"regex": "*"}}, "spec.http[0].match[0].uri.regex is not a valid RE2 regex"),
        ({"uri": {"regex": "(a"}}, "spec.http[0].match[0].uri.regex is not a valid RE2 regex"),
        ({"uri": {"regex": "a(?=b)"}}, "uri.regex uses look-around"),
        ({"uri": {"regex": ""}}, "spec.http[0].match[0].uri.regex must not be empty"),
        ({"headers": {"x": {"regex": "*"}}}, "spec.http[0].match[0].headers.x.regex is not a"),
        ({"headers": {"x": {"prefix": ""}}}, "spec.http[0].match[0].headers.x.prefix must not"),
    ],
)
def test_an_invalid_match_is_refused_as_istio_validates_it(
    tmp_path: Path, match: dict[str, Any], field: str
) -> None:
    http = [{"match": [match], "route": [{"destination": BACKEND_HOST}]}]
    with pytest.raises(TranslationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))


def test_star_in_without_headers_is_a_present_match_and_empty_uri_prefix_is_fine(
    tmp_path: Path,
) -> None:
    http = [
        {
            "match": [{"uri": {"prefix": ""}, "withoutHeaders": {"x-skip": {"regex": "*"}}}],
            "route": [{"destination": BACKEND_HOST}],
        }
    ]
    config = local_config(overlay(tmp_path / "o", patches=[vs_patch("backend", http)]))
    (route,) = routes(config, BACKEND_LISTENER)
    assert route["match"]["prefix"] == ""
    assert route["match"]["headers"] == [
        {"name": "x-skip", "present_match": True, "invert_match": True}
    ]
