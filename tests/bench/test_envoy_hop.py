"""bench/envoy_hop.py: each variant is the local mesh's own Envoy config, changed in one
thing, and valid for the real Envoy - never timing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import envoy_hop
from mesh import envoy
from mesh.translate.telemetry import TracingSpec
from mesh.translate.tracing import hcm_tracing


@pytest.fixture(scope="module")
def base() -> envoy_hop.Bootstrap:
    return envoy_hop.translated(backend_port=40001, traces_port=40002)


def hcm(boot: envoy_hop.Bootstrap) -> dict:
    (only,) = list(envoy_hop._hcms(boot))
    return only


@pytest.mark.parametrize("name", sorted(envoy_hop.VARIANTS))
def test_each_variant_is_one_outbound_listener_envoy_accepts(
    base: envoy_hop.Bootstrap, name: str, tmp_path: Path
) -> None:
    boot = envoy_hop.variant(base, name, admin_port=40003, listener_port=40004)
    (listener,) = boot["static_resources"]["listeners"]
    assert listener["name"].startswith("outbound_backend-service.")
    assert listener["address"]["socket_address"]["port_value"] == 40004
    assert boot["admin"]["address"]["socket_address"]["port_value"] == 40003
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(boot))
    envoy.validate(path)


def test_the_variants_change_only_what_they_name(base: envoy_hop.Bootstrap) -> None:
    def of(name: str) -> dict:
        return hcm(envoy_hop.variant(base, name, admin_port=1, listener_port=2))

    shipped = of("shipped")
    assert shipped["access_log"] and shipped["tracing"]["random_sampling"]["value"] == 100.0
    assert "access_log" not in of("no-log") and of("no-log")["tracing"] == shipped["tracing"]
    assert "tracing" not in of("untraced") and of("untraced")["access_log"] == shipped["access_log"]
    provider = of("json-spans")["tracing"]["provider"]["typed_config"]
    assert provider["collector_endpoint_version"] == "HTTP_JSON"
    assert shipped["tracing"]["provider"]["typed_config"]["collector_endpoint_version"] == (
        "HTTP_PROTO"
    )


def test_bare_proxy_keeps_only_the_router_and_the_route_to_each_subset(
    base: envoy_hop.Bootstrap,
) -> None:
    shipped = envoy_hop.variant(base, "shipped", admin_port=1, listener_port=2)
    bare = envoy_hop.variant(base, "bare-proxy", admin_port=1, listener_port=2)
    got = hcm(bare)
    assert [f["name"] for f in got["http_filters"]] == ["envoy.filters.http.router"]
    assert "tracing" not in got and "access_log" not in got
    assert got["generate_request_id"] is False and got["normalize_path"] is False
    routes = got["route_config"]["virtual_hosts"][0]["routes"]
    assert routes and all("retry_policy" not in r["route"] for r in routes)
    # the same routes to the same clusters: only what Istio adds is gone
    clusters = [
        r["route"]["cluster"] for r in hcm(shipped)["route_config"]["virtual_hosts"][0]["routes"]
    ]
    assert [r["route"]["cluster"] for r in routes] == clusters
    for cluster in bare["static_resources"]["clusters"]:
        assert cluster["lb_policy"] == "ROUND_ROBIN"
        assert "outlier_detection" not in cluster and "circuit_breakers" not in cluster
    assert any("outlier_detection" in c for c in shipped["static_resources"]["clusters"])


def test_sampled_1pct_is_what_a_telemetry_at_1_percent_translates_to(
    base: envoy_hop.Bootstrap,
) -> None:
    shipped = hcm(envoy_hop.variant(base, "shipped", admin_port=1, listener_port=2))
    sampled = hcm(envoy_hop.variant(base, "sampled-1pct", admin_port=1, listener_port=2))
    service = shipped["tracing"]["custom_tags"][0]["literal"]["value"]
    assert sampled["tracing"] == hcm_tracing(service, TracingSpec(sampling=1.0))
    assert sampled["access_log"] == shipped["access_log"]


def test_the_envoy_floor_answers_the_body_it_is_given_as_json(tmp_path: Path) -> None:
    """The yardstick is a real Envoy: started as the bench starts it, it answers BODY."""
    import httpx

    from bench.servers import start_envoy_floor

    body = '{"version": "v1", "tasks": [{"id": 1, "title": "t"}]}'
    floor = start_envoy_floor(body, tmp_path / "logs")
    try:
        r = httpx.get(floor.url + "/api/tasks", timeout=10.0, trust_env=False)
        assert r.status_code == 200 and r.text == body
        assert r.headers["content-type"] == "application/json"
        assert floor.cpu_s() >= 0.0
    finally:
        floor.stop()
    assert floor.popen.poll() is not None
