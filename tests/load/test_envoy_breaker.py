"""The load tool and the circuit-breaker demo against real Envoy (Istio's task, by hand).

A hand-written Envoy config with Istio's tight breaker (maxConnections 1,
http1MaxPendingRequests 1, maxRequestsPerConnection 1) in front of target_app's
slow path: Envoy's own 503s must be counted as overloaded, and its
``upstream_rq_pending_overflow`` must grow by exactly that count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import envoy
import pytest
import yaml

from mesh import demos
from mesh.load.runner import run_load
from tests.support.procs import Proc, free_port, start, wait_http_ok

pytestmark = pytest.mark.integration

ENVOY = Path(envoy.__file__).parent / "_bin" / "envoy"


def _config(listen: int, admin: int, upstream: int) -> dict[str, object]:
    api = "type.googleapis.com/envoy.extensions."
    hcm = api + "filters.network.http_connection_manager.v3."
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "in",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": hcm + "HttpConnectionManager",
                        "stat_prefix": "in",
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"},
                                        "route": {"cluster": "target", "timeout": "0s"}}],
                        }]},
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": api + "filters.http.router.v3.Router"
                        }}],
                    },
                }]}],
            }],
            "clusters": [{
                "name": "target",
                "type": "STATIC",
                "connect_timeout": "1s",
                "circuit_breakers": {"thresholds": [
                    {"max_connections": 1, "max_pending_requests": 1, "track_remaining": True}
                ]},
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": api + "upstreams.http.v3.HttpProtocolOptions",
                        "common_http_protocol_options": {"max_requests_per_connection": 1},
                        "explicit_http_config": {"http_protocol_options": {}},
                    }
                },
                "load_assignment": {"cluster_name": "target", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": upstream}}}}
                ]}]},
            }],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def breaker(target: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(listener URL, admin URL) of an Envoy with the tight breaker in front of target."""
    assert target.port is not None
    listen, admin = free_port(), free_port()
    work = tmp_path_factory.mktemp("envoy-breaker")
    config = work / "envoy.yaml"
    config.write_text(yaml.safe_dump(_config(listen, admin, target.port)))
    argv = [str(ENVOY), "-c", str(config), "--concurrency", "1", "--disable-hot-restart",
            "-l", "warning"]  # fmt: skip
    proc = start("envoy-breaker", argv, work, port=admin)
    try:
        wait_http_ok(proc, "/ready")
        yield f"http://127.0.0.1:{listen}", f"http://127.0.0.1:{admin}"
    finally:
        proc.stop()


def test_one_connection_never_overflows(breaker: tuple[str, str]) -> None:
    listener, _ = breaker
    r = run_load(listener + "/slow-solo?ms=2", connections=1, requests=10)
    assert dict(r.status_counts) == {200: 10}
    assert r.sockets_used == 1  # downstream keep-alive; Envoy closes only upstream


def test_breaker_demo_overflow_matches_envoy_stats(breaker: tuple[str, str]) -> None:
    listener, admin = breaker
    report = demos.circuit_breaker(listener + "/slow-demo?ms=5", admin, cluster_filter="target")
    first = report.steps[0]
    assert first.result.overloaded_503 == 0 and first.overflow_delta == 0
    for step in report.steps:
        assert step.overflow_delta == step.result.overloaded_503  # Envoy counted each one
        assert step.result.status_counts[503] == step.result.overloaded_503
        assert step.stats["target"][demos.REMAINING_PENDING] >= 0
    last = report.steps[-1].result
    # Never a percentage (not stable): some 200s and some overflow 503s at -c 3.
    assert last.status_counts[200] > 0 and last.overloaded_503 > 0
