"""`mesh proxy-config` writers on small config dumps: istioctl's own golden files for the
route table, and the rules of istioctl's cluster, listener and endpoint writers.

The live tests (test_proxy_config_live.py) read a running mesh's Envoy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from mesh.cli import CliError
from mesh.commands.proxy_config import admin_url, validate
from mesh.proxy_config import dump, tabwriter
from mesh.proxy_config.listeners import ListenerFilter, listeners_table
from mesh.proxy_config.writers import (
    ClusterFilter,
    EndpointFilter,
    clusters_table,
    describe_route_domains,
    endpoints_table,
    parse_subset_key,
    routes_table,
    selected_statuses,
)
from mesh.state import MeshState

GOLDEN = Path(__file__).parent / "golden" / "istioctl-routes"
DR = "/apis/networking.istio.io/v1/namespaces/default/destination-rule/backend"
VS = "/apis/networking.istio.io/v1/namespaces/shop/virtual-service/cart"


def render(table: tuple[list[list[str]], int]) -> str:
    return tabwriter.render(*table)


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
def test_routes_match_istioctl_golden_output(case: str) -> None:
    config = dump.parse(json.loads((GOLDEN / case / "configdump.json").read_text()))
    assert render(routes_table(config.routes)) == (GOLDEN / case / "output.txt").read_text()


def test_tabwriter_pads_all_but_the_last_column() -> None:
    text = tabwriter.render([["A", "BB", "C"], ["aaaa", "", "last"]], 5)
    assert text.splitlines() == ["A        BB     C", "aaaa            last"]


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("outbound|5000|v1|backend-service.default.svc.cluster.local",
         ("outbound", "v1", "backend-service.default.svc.cluster.local", 5000)),
        ("inbound|8000||", ("inbound", "", "", 8000)),
        ("outbound_.80_.v2_.reviews.default.svc.cluster.local",
         ("outbound", "v2", "reviews.default.svc.cluster.local", 80)),
        ("BlackHoleCluster", ("", "", "", 0)),
    ],
)  # fmt: skip
def test_parse_subset_key(name: str, parsed: tuple[str, str, str, int]) -> None:
    assert parse_subset_key(name) == parsed


def _cluster(name: str, kind: str | None = "EDS", config: str | None = None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"name": name}
    if kind:
        cluster["type"] = kind
    if config:
        cluster["metadata"] = {"filter_metadata": {"istio": {"config": config}}}
    return cluster


def _config_dump(**sections: dict[str, Any]) -> dict[str, Any]:
    kinds = {"cds": "ClustersConfigDump", "lds": "ListenersConfigDump", "rds": "RoutesConfigDump"}
    return {
        "configs": [
            {"@type": f"type.googleapis.com/envoy.admin.v3.{kinds[k]}", **v}
            for k, v in sections.items()
        ]
    }


def test_clusters_static_and_dynamic_sorted_with_placeholders() -> None:
    v2 = "outbound|5000|v2|backend.default.svc.cluster.local"
    v1 = "outbound|5000|v1|backend.default.svc.cluster.local"
    data = _config_dump(
        cds={
            "dynamic_active_clusters": [{"cluster": _cluster(v2, config=DR)}],
            "static_clusters": [
                {"cluster": _cluster("zipkin", kind=None)},
                {"cluster": _cluster(v1, config=DR)},
                {"cluster": _cluster("inbound|5000||", kind="STATIC")},
            ],
        }
    )
    rows, padding = clusters_table(dump.parse(data).clusters, ClusterFilter())
    assert padding == 5
    assert rows == [
        ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
        ["", "5000", "-", "inbound", "STATIC", ""],
        ["backend.default.svc.cluster.local", "5000", "v1", "outbound", "EDS", "backend.default"],
        ["backend.default.svc.cluster.local", "5000", "v2", "outbound", "EDS", "backend.default"],
        ["zipkin", "-", "-", "-", "STATIC", ""],
    ]
    only = clusters_table(dump.parse(data).clusters, ClusterFilter(direction="inbound"))[0]
    assert [r[3] for r in only[1:]] == ["inbound"]
    by_port = clusters_table(dump.parse(data).clusters, ClusterFilter(port=5000, subset="v2"))[0]
    assert [r[2] for r in by_port[1:]] == ["v2"]


def _hcm(rds: str | None = None, inline: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"rds": {"route_config_name": rds}} if rds else {}
    if inline is not None:
        config["route_config"] = inline
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def _tcp(cluster: str) -> dict[str, Any]:
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": cluster}}


def _listener(name: str, port: int, chains: list[dict[str, Any]]) -> dict[str, Any]:
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {"name": name, "address": address, "filter_chains": chains}


def test_listeners_rows_per_chain_with_match_and_destination() -> None:
    sni = {"server_names": ["shop.example.com"], "transport_protocol": "tls"}
    alpn = {"application_protocols": ["http/1.0", "http/1.1", "h2c"]}
    inline = {"virtual_hosts": [{"domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "outbound|80||a.svc"}}]}]}  # fmt: skip
    data = _config_dump(
        lds={
            "dynamic_listeners": [
                {
                    "active_state": {
                        "listener": _listener(
                            "gw",
                            8443,
                            [
                                {
                                    "filter_chain_match": sni,
                                    "filters": [_hcm(rds="https.443.shop")],
                                },
                                {"filter_chain_match": alpn, "filters": [_hcm(inline=inline)]},
                            ],
                        )
                    }
                },
            ],
            "static_listeners": [
                {"listener": _listener("db", 5432, [{"filters": [_tcp("outbound|5432||db")]}])},
                {"listener": _listener("bh", 9999, [{"filters": [_tcp("BlackHoleCluster")]}])},
            ],
        }
    )
    listeners = dump.parse(data).listeners
    rows, padding = listeners_table(listeners, ListenerFilter())
    assert padding == 1
    assert rows == [
        ["ADDRESSES", "PORT", "MATCH", "DESTINATION"],
        ["127.0.0.1", "5432", "ALL", "Cluster: outbound|5432||db"],
        ["127.0.0.1", "8443", "SNI: shop.example.com; Trans: tls", "Route: https.443.shop"],
        ["127.0.0.1", "8443", "App: HTTP", "Cluster: outbound|80||a.svc"],
        ["127.0.0.1", "9999", "ALL", "Non-HTTP/Non-TCP"],
    ]
    tcp_only = listeners_table(listeners, ListenerFilter(type="tcp"))[0]
    assert [r[1] for r in tcp_only[1:]] == ["5432"]
    assert listeners_table(listeners, ListenerFilter(address="10.0.0.1"))[0][1:] == []


def test_routes_virtual_service_column_and_empty_vhost() -> None:
    route = {"match": {"prefix": "/api"}, "route": {"cluster": "c"},
             "metadata": {"filter_metadata": {"istio": {"config": VS}}}}  # fmt: skip
    passthrough = {"match": {"prefix": "/"}, "route": {"cluster": "PassthroughCluster"}}
    data = _config_dump(
        rds={
            "dynamic_route_configs": [
                {
                    "route_config": {
                        "name": "8080",
                        "virtual_hosts": [
                            {
                                "name": "cart:8080",
                                "domains": [
                                    "cart.shop",
                                    "cart.shop.svc.cluster.local",
                                    "cart.shop.svc",
                                ],
                                "routes": [route, passthrough],
                            },
                            {"name": "blackhole:8080", "domains": ["*"]},
                        ],
                    }
                },
                {"route_config": {"name": "80", "virtual_hosts": []}},
            ]
        }
    )
    rows = routes_table(dump.parse(data).routes)[0]
    assert rows[1:] == [
        ["8080", "cart:8080", "cart.shop", "/api*", "cart.shop"],
        ["8080", "blackhole:8080", "*", "/*", "404"],
    ]
    assert routes_table(dump.parse(data).routes, name="80")[0][1:] == []


def test_describe_route_domains_as_istioctl_tests() -> None:
    # route_test.go TestDescribeRouteDomains
    assert describe_route_domains(["example.com", "example.com:8080"]) == "example.com"
    assert (
        describe_route_domains(["example.com", "example.com:8080", "1.2.3.4", "1.2.3.4:8080"])
        == "example.com, 1.2.3.4"
    )
    more = ["example.com", "example.com:8080", "www.example.com", "www.example.com:8080",
            "[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:8080"]  # fmt: skip
    assert describe_route_domains(more) == "example.com, www.example.com + 1 more..."


def _host(port: int, status: str = "HEALTHY", ejected: bool = False) -> dict[str, Any]:
    health: dict[str, Any] = {"eds_health_status": status}
    if ejected:
        health["failed_outlier_check"] = True
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {"address": address, "health_status": health}


def test_endpoints_sorted_with_outlier_check_and_filters() -> None:
    statuses = [
        {"name": "outbound|5000|v2|b", "host_statuses": [_host(7002, ejected=True)]},
        {"name": "outbound|5000|v1|b", "host_statuses": [_host(7001), _host(7000, "UNHEALTHY")]},
    ]
    rows, padding = endpoints_table(statuses, EndpointFilter())
    assert padding == 5
    assert rows == [
        ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"],
        ["127.0.0.1:7000", "UNHEALTHY", "OK", "outbound|5000|v1|b"],
        ["127.0.0.1:7001", "HEALTHY", "OK", "outbound|5000|v1|b"],
        ["127.0.0.1:7002", "HEALTHY", "FAILED", "outbound|5000|v2|b"],
    ]
    unhealthy = endpoints_table(statuses, EndpointFilter(status="unhealthy"))[0]
    assert [r[0] for r in unhealthy[1:]] == ["127.0.0.1:7000"]
    picked = selected_statuses(statuses, EndpointFilter(port=7002))
    assert [s["name"] for s in picked] == ["outbound|5000|v2|b"]


def _state(sidecars: dict[str, str]) -> MeshState:
    return MeshState(1, "k8s", "http://127.0.0.1:1", [], {}, 0, proxy_admin_urls=sidecars)


def test_proxy_names_a_sidecar_or_the_shared_envoy() -> None:
    state = _state({"backend-v1-0.sidecar": "http://127.0.0.1:2"})
    assert admin_url(state, "") == "http://127.0.0.1:1"
    assert admin_url(state, "backend-v1-0") == "http://127.0.0.1:2"
    assert admin_url(state, "backend-v1-0.sidecar") == "http://127.0.0.1:2"
    with pytest.raises(CliError, match=r"unknown proxy 'frontend-0' \(known: backend-v1-0;"):
        admin_url(state, "frontend-0")
    with pytest.raises(CliError, match="runs no sidecars"):
        admin_url(_state({}), "frontend-0")


@pytest.mark.parametrize(
    ("flag", "value"), [("direction", "sideways"), ("output", "wide"), ("status", "ok")]
)
def test_bad_flag_values_are_refused(flag: str, value: str) -> None:
    args = argparse.Namespace(output="short", direction="", status="", type="", port=0)
    setattr(args, flag, value)
    with pytest.raises(CliError, match=value):
        validate(args)
