"""Gateways and connection managers as istiod builds them (issue 14 items 1, 2, 3, 6).

Sources: pilot/pkg/networking/core/listener_builder.go (buildHTTPConnectionManager),
gateway.go (buildGatewayHTTPRouteConfig), pkg/config/host/names.go (Intersection,
NamesForNamespace), route/route.go (SortVHostRoutes, setTimeout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from mesh.translate.hostnames import intersect_hosts
from tests.mesh.support import (
    GATEWAY_LISTENER,
    K8S,
    compose_config,
    hcm,
    local_config,
    overlay,
)

FRONTEND = {"host": "frontend-service", "port": {"number": 8000}}


def gateway(hosts: list[str], name: str = "taskmesh-gateway") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}
            ],
        },
    }


def gateway_vs(name: str, hosts: list[str], http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": hosts, "gateways": ["taskmesh-gateway"], "http": http},
    }


def hello(prefix: str, body: str) -> dict[str, Any]:
    return {
        "name": body,
        "match": [{"uri": {"prefix": prefix}}],
        "directResponse": {"status": 200, "body": {"string": body}},
    }


def vhosts(config: dict[str, Any]) -> list[dict[str, Any]]:
    return hcm(config, GATEWAY_LISTENER)["route_config"]["virtual_hosts"]


def every_hcm(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f["typed_config"]
        for listener in config["static_resources"]["listeners"]
        for chain in listener["filter_chains"]
        for f in chain["filters"]
    ]


@pytest.mark.parametrize("target", ["local", "compose"])
def test_every_connection_manager_has_istiods_defaults(target: str) -> None:
    config = local_config(K8S) if target == "local" else compose_config(K8S)
    managers = every_hcm(config)
    assert len(managers) == 3  # the gateway and two outbound listeners
    for manager in managers:
        assert manager["normalize_path"] is True
        assert manager["path_with_escaped_slashes_action"] == "KEEP_UNCHANGED"
        assert manager["upgrade_configs"] == [{"upgrade_type": "websocket"}]
        assert manager["stream_idle_timeout"] == "0s"
        assert "strip_any_host_port" not in manager
        table = manager["route_config"]
        assert table["ignore_port_in_host_matching"] is True
        assert table["max_direct_response_body_size_bytes"] == 1024 * 1024
        assert table["validate_clusters"] is False
        for vhost in table["virtual_hosts"]:
            for route in vhost["routes"]:
                if "route" in route:
                    assert route["route"]["max_grpc_timeout"] == route["route"]["timeout"]
    edge = hcm(config, GATEWAY_LISTENER)
    assert edge["server_name"] == "istio-envoy"
    assert edge["use_remote_address"] is True
    outbound = [m for m in managers if m is not edge]
    assert all("server_name" not in m and m["use_remote_address"] is False for m in outbound)


@pytest.mark.parametrize(
    ("server", "vs", "expected"),
    [
        (["*"], ["*"], ["*"]),
        (["*"], ["shop.example.com"], ["shop.example.com"]),
        (["shop.example.com"], ["*"], ["shop.example.com"]),
        (["*.example.com"], ["a.example.com", "b.example.com"], ["a.example.com", "b.example.com"]),
        (["a.example.com", "b.example.com"], ["*.example.com"], ["a.example.com", "b.example.com"]),
        (["foo.com", "*.net"], ["*.com", "bar.net"], ["foo.com", "bar.net"]),
        (["foo.com", "*.net"], ["*.bar.net"], ["*.bar.net"]),
        (["*.b.c"], ["*.c"], ["*.b.c"]),
        (["shop.example.com"], ["other.example.com"], []),
    ],
)
def test_virtual_host_domains_are_the_intersection(
    server: list[str], vs: list[str], expected: list[str]
) -> None:
    assert intersect_hosts(server, vs) == expected


def test_a_narrowed_gateway_host_narrows_the_virtual_host(tmp_path: Path) -> None:
    config = local_config(overlay(tmp_path / "o", patches=[gateway(["shop.example.com"])]))
    (only,) = vhosts(config)
    assert only["domains"] == ["shop.example.com"]
    assert only["name"] == "shop.example.com:80"


@pytest.mark.parametrize(
    ("host", "binds"),
    [("./shop.example.com", True), ("*/shop.example.com", True), ("default/shop.example.com", True)]
    + [("other/shop.example.com", False)],
)
def test_server_host_namespaces_pick_virtual_services(
    tmp_path: Path, host: str, binds: bool
) -> None:
    directory = overlay(tmp_path / "o", patches=[gateway([host])])
    if binds:
        assert [v["domains"] for v in vhosts(local_config(directory))] == [["shop.example.com"]]
    else:
        with pytest.raises(TranslationError, match="IST0132"):
            local_config(directory)


def test_virtual_services_on_one_host_merge_with_catch_all_routes_last(tmp_path: Path) -> None:
    # "zz-hello" sorts after "frontend": concatenated, its /hello would sit behind the
    # frontend's catch-all and never match.
    extra = [gateway_vs("zz-hello", ["*"], [hello("/hello", "hello")])]
    config = local_config(overlay(tmp_path / "o", extra=extra))
    (only,) = vhosts(config)
    assert [r["name"] for r in only["routes"]] == ["admin-blocked", "hello", "frontend"]


def test_virtual_services_are_taken_by_name_then_namespace(tmp_path: Path) -> None:
    extra = [
        gateway_vs("b-second", ["*"], [hello("/b", "b")]),
        gateway_vs("a-first", ["*"], [hello("/a", "a")]),
    ]
    (only,) = vhosts(local_config(overlay(tmp_path / "o", extra=extra)))
    assert [r["name"] for r in only["routes"]] == ["a", "b", "admin-blocked", "frontend"]


def test_hosts_with_the_same_routes_share_one_virtual_host(tmp_path: Path) -> None:
    patches = [
        gateway(["*"]),
        gateway_vs(
            "frontend",
            ["a.example.com", "bb.example.com"],
            [{"route": [{"destination": FRONTEND}]}],
        ),
    ]
    extra = [gateway_vs("zz-hello", ["a.example.com"], [hello("/hello", "hello")])]
    hosts = vhosts(local_config(overlay(tmp_path / "o", patches=patches, extra=extra)))
    assert [(v["name"], v["domains"]) for v in hosts] == [
        ("a.example.com:80", ["a.example.com"]),
        ("bb.example.com:80", ["bb.example.com"]),
    ]
    patches[1]["spec"]["hosts"].append("cc.example.com")
    hosts = vhosts(local_config(overlay(tmp_path / "p", patches=patches)))
    assert [(v["name"], v["domains"]) for v in hosts] == [
        ("bb.example.com:80", ["bb.example.com", "cc.example.com", "a.example.com"]),
    ]
