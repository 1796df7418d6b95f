"""Envoy's tracing config, the workloads' trace settings, and `mesh traces` against a receiver."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from frontend.settings import FrontendSettings
from mesh import envoy
from mesh.cli import main as mesh_main
from mesh.manifests import load
from mesh.traces.launch import trace_env, traces_command
from mesh.translate import compose_placement, local_placement, translate
from mesh.translate.placement import sequential_instance_ports
from mesh.translate.tracing import COLLECTOR_CLUSTER, GATEWAY_SERVICE, SERVICE_TAG
from telemetry.settings import SettingsError, telemetry_from_env
from tests.observability.conftest import K8S
from tests.observability.test_receiver import zipkin_span
from tests.support.procs import Proc, free_port, running, start, wait_http_ok


def local(traces_port: int | None) -> dict[str, Any]:
    manifests = load(K8S)
    placement = local_placement(
        manifests, sequential_instance_ports(manifests), traces_port=traces_port
    )
    return translate(manifests, placement)


def hcms(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]
        for listener in config["static_resources"]["listeners"]
    }


def test_every_listener_traces_to_the_receiver_under_an_istio_style_name() -> None:
    config = local(traces_port=4999)
    names = {}
    for listener, hcm in hcms(config).items():
        tracing = hcm["tracing"]
        provider = tracing["provider"]["typed_config"]
        assert provider["collector_cluster"] == COLLECTOR_CLUSTER
        assert provider["trace_context_option"] == "USE_B3_WITH_W3C_PROPAGATION"
        assert provider["shared_span_context"] is False
        (tag,) = tracing["custom_tags"]
        assert tag["tag"] == SERVICE_TAG
        names[listener] = tag["literal"]["value"]
    assert names["gateway_80"] == GATEWAY_SERVICE
    assert names["outbound_backend-service.default.svc.cluster.local:5000"] == (
        "backend-service.outbound"
    )
    (collector,) = [
        c for c in config["static_resources"]["clusters"] if c["name"] == COLLECTOR_CLUSTER
    ]
    endpoint = collector["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4999}


@pytest.mark.parametrize("config", ["local-untraced", "compose"])
def test_no_receiver_means_no_tracing(config: str) -> None:
    manifests = load(K8S)
    generated = local(None) if config == "local-untraced" else translate(
        manifests, compose_placement(manifests)
    )  # fmt: skip
    assert all("tracing" not in hcm for hcm in hcms(generated).values())
    names = [c["name"] for c in generated["static_resources"]["clusters"]]
    assert COLLECTOR_CLUSTER not in names
    assert "layered_runtime" not in generated


@pytest.mark.integration
def test_envoy_accepts_the_traced_config(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(local(traces_port=4999), sort_keys=False))
    envoy.validate(path, envoy.envoy_binary())  # raises RunnerError with Envoy's reason


def test_workload_trace_env_is_what_the_services_read() -> None:
    env = trace_env("http://127.0.0.1:4999")
    telemetry = telemetry_from_env(env, default_service="backend", version="v1", instance="b")
    assert telemetry.traces_exporters == ("otlp",)
    assert telemetry.otlp_traces_endpoint == "http://127.0.0.1:4999/v1/traces"
    settings = FrontendSettings.from_env(env)
    assert settings.trace_view_url == "http://127.0.0.1:4999/traces/{trace_id}"


@pytest.mark.parametrize(
    ("value", "message"),
    [("ftp://x/{trace_id}", "not an http"), ("http://127.0.0.1:4318/traces", "no {trace_id}")],
)
def test_bad_trace_view_url_is_named(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"TRACE_VIEW_URL: .*{message}"):
        FrontendSettings.from_env({"TRACE_VIEW_URL": value})


def test_mesh_traces_without_a_mesh_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh_main(["traces", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mesh traces: no running mesh") and "--url" in err
    assert len(err.splitlines()) == 1


def test_mesh_traces_names_a_bad_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_main(["traces", "nothex", "--url", "http://127.0.0.1:9"]) == 2
    assert "not 16 or 32 hex digits" in capsys.readouterr().err


def test_mesh_traces_says_when_the_receiver_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert mesh_main(["traces", "--url", url]) == 2
    assert f"cannot reach the trace receiver at {url}" in capsys.readouterr().err


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Proc]:
    port = free_port()
    argv = traces_command(port)
    proc = start("traces", argv, tmp_path, port=port)
    with running([proc]):
        wait_http_ok(proc, "/healthz")
        yield proc


@pytest.mark.integration
def test_mesh_traces_prints_a_tree_per_trace(
    receiver: Proc, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = "463ac35c9f6413ad48485a3953bb6124"
    spans = [
        zipkin_span(trace, "a" * 16, None, **{SERVICE_TAG: GATEWAY_SERVICE}),
        zipkin_span(trace, "b" * 16, "a" * 16, **{SERVICE_TAG: "backend-service.outbound",
                    "upstream_cluster": "outbound|5000|v2|backend-service"}),
    ]  # fmt: skip
    httpx.post(f"{receiver.url}/api/v2/spans", json=spans, timeout=5.0).raise_for_status()
    assert mesh_main(["traces", "--url", receiver.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"trace {trace}  2 spans")
    assert out[1].startswith(f"  {GATEWAY_SERVICE}  client 'GET /api/tasks'")
    assert out[2].startswith("    backend-service.outbound -> v2  client")
    assert mesh_main(["traces", trace[:16].rjust(32, "0"), "--url", receiver.url]) == 2
    assert "no trace" in capsys.readouterr().err
    assert mesh_main(["traces", trace, "--json", "--url", receiver.url]) == 0
    assert '"trace_id": "463ac35c9f6413ad48485a3953bb6124"' in capsys.readouterr().out


PARENT = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(os.getpid())])
sys.stdin.read()
"""


@pytest.mark.integration
def test_receiver_exits_when_its_parent_is_gone() -> None:
    """A killed `mesh up` must not leave the receiver holding port 4318."""
    port = free_port()
    argv = [sys.executable, "-c", PARENT, sys.executable, "-m", "mesh.traces", "--port", str(port)]
    parent = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_until(lambda: _answers(url), "the receiver to start")
        parent.communicate(b"", timeout=10)  # the "mesh up" ends without stopping it
        wait_until(lambda: not _answers(url), "the orphaned receiver to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)  # its group holds the receiver too
        parent.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # polling a process's state, not a pass condition


def test_mesh_up_trace_port_falls_back_when_4318_is_taken() -> None:
    import argparse
    import socket

    from mesh.commands.up import DEFAULT_TRACES_PORT, traces_port

    def args(**kw: Any) -> argparse.Namespace:
        return argparse.Namespace(**{"no_traces": False, "traces_port": None, **kw})

    assert traces_port(args(no_traces=True)) is None
    assert traces_port(args(traces_port=4999)) == 4999
    with socket.socket() as busy:
        # SO_REUSEADDR as servers bind: a port left in TIME_WAIT is free, a listener is not
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # another process listens there: just as good
            busy.bind(("127.0.0.1", DEFAULT_TRACES_PORT))
            busy.listen()
        port = traces_port(args())
    assert port is not None and port != DEFAULT_TRACES_PORT
