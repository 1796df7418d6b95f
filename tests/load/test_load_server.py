"""The load tool against a real server with known behaviour (target_app.py)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable

import httpx
import pytest

from mesh.load.runner import run_load
from tests.support.procs import VENV_BIN, Proc, free_port

pytestmark = pytest.mark.integration

Paths = Callable[[str], str]
Calls = Callable[[str], int]


def test_exact_histogram_overload_and_split(target: Proc, path_for: Paths, server_calls: Calls):
    path = path_for("mix")
    r = run_load(target.url + path, connections=3, requests=300)
    assert r.total == server_calls(path) == 300
    assert dict(r.status_counts) == {200: 200, 503: 100}
    assert r.overloaded_503 == 100
    assert dict(r.versions) == {"v1": 100, "v2": 100}
    assert dict(r.instances) == {"i0": 50, "i1": 50, "i2": 50, "i3": 50}
    assert not r.errors
    assert len(r.latencies_ms) == 300
    assert r.sockets_used == 3  # one keep-alive connection per worker


def test_duration_run_ends_and_counts_every_request(
    target: Proc, path_for: Paths, server_calls: Calls
):
    path = path_for("mix")
    # long enough that a loaded machine still finishes a request in it (it ends on time)
    r = run_load(target.url + path, connections=2, duration="1s")
    assert r.total > 0
    assert r.total == server_calls(path)
    assert r.duration_s > 0 and not r.interrupted


def test_qps_limits_the_count(target: Proc, path_for: Paths, server_calls: Calls):
    path = path_for("mix")
    r = run_load(target.url + path, connections=4, duration="1s", qps=20)
    # 20 req/s for 1 s is at most ~20 starts, however many connections; allow slack.
    assert 0 < r.total <= 25
    assert r.total == server_calls(path)


def test_connection_close_means_one_socket_per_request(target: Proc, path_for: Paths):
    r = run_load(target.url + path_for("close"), connections=2, requests=40)
    assert r.status_counts[200] == 40
    assert r.sockets_used == 40


def test_version_from_frontend_json_body(target: Proc, path_for: Paths):
    r = run_load(target.url + path_for("frontend"), connections=2, requests=10)
    assert dict(r.versions) == {"v2": 10}
    assert dict(r.instances) == {"backend-v2-0": 10}


def test_headers_are_sent(target: Proc, path_for: Paths, server_calls: Calls):
    path = path_for("mix")
    r = run_load(target.url + path, connections=1, requests=3, headers={"x-canary": "true"})
    assert r.total == server_calls(path) == 3


def test_timeouts_are_data(target: Proc, path_for: Paths):
    r = run_load(target.url + path_for("slow") + "?ms=3000", connections=2, requests=2,
                 timeout="100ms")  # fmt: skip
    assert dict(r.errors) == {"read_timeout": 2}
    assert r.responses == 0


def test_refused_connections_are_data_in_a_run() -> None:
    r = run_load(f"http://127.0.0.1:{free_port()}/", connections=2, requests=4)
    assert dict(r.errors) == {"connection_refused": 4}


def _mesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "mesh"), "load", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_json_report(target: Proc, path_for: Paths, server_calls: Calls):
    path = path_for("mix")
    done = _mesh(target.url + path, "-c", "3", "-n", "300", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar off a terminal
    d = json.loads(done.stdout)
    # The reachability check is one more call; any 300 consecutive calls hold the same mix.
    assert server_calls(path) == 301
    assert {k: v["count"] for k, v in d["status_codes"].items()} == {"200": 200, "503": 100}
    assert d["status_codes"]["503"]["percent"] == pytest.approx(33.33, abs=0.01)
    assert d["overloaded_503"] == 100
    assert {k: v["count"] for k, v in d["versions"].items()} == {"v1": 100, "v2": 100}
    assert d["requests"] == 300 and d["error_count"] == 0 and d["sockets_used"] == 3
    assert d["latency_ms"]["p50"] <= d["latency_ms"]["p99"] <= d["latency_ms"]["max"]


def test_cli_text_report(target: Proc, path_for: Paths):
    done = _mesh(target.url + path_for("mix"), "-c", "2", "-n", "30", "-H", "x-canary: true")
    assert done.returncode == 0, done.stderr
    assert "Code 200 :      20" in done.stdout
    assert "10 with x-envoy-overloaded" in done.stdout


def test_cli_unreachable_exits_2_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    done = _mesh(url, "-n", "5")
    assert done.returncode == 2
    assert done.stderr.strip() == f"mesh load: cannot reach {url}: connection refused"
    assert done.stdout == ""


def test_cli_ctrl_c_reports_what_ran(target: Proc, path_for: Paths, server_calls: Calls):
    path = path_for("mix")
    proc = subprocess.Popen(
        [str(VENV_BIN / "mesh"), "load", target.url + path, "-c", "2", "-t", "60s", "--json",
         "--qps", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(trust_env=False) as client:
            while server_calls(path) <= 20:  # wait until the load is under way
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                client.get(f"{target.url}/readyz")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    d = json.loads(out)
    assert d["interrupted"] is True
    assert 20 <= d["requests"] == server_calls(path) - 1  # minus the reachability check
