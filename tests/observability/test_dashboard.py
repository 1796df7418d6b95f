"""dashboards/taskmesh.json queries only what the services export (or Istio's own metrics)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.promql import parse
from tests.support.procs import VENV_BIN, free_port, running, start, wait_http_ok

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "taskmesh.json"
#: Istio's standard metrics (the sidecars export them, not our services).
ISTIO_METRICS = {
    "istio_requests_total": {
        "reporter", "destination_service_name", "destination_version", "response_code",
        "response_flags",
    },
    "istio_request_duration_milliseconds_bucket": {
        "reporter", "destination_service_name", "destination_version", "le",
    },
}  # fmt: skip
#: Labels Prometheus adds from the target (Istio's addon config maps pod labels: app, version).
TARGET_LABELS = {"app", "job", "instance", "namespace", "pod"}


def expressions(dashboard: dict) -> list[str]:
    out = []
    for panel in dashboard["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_promql_reader_finds_names_and_labels() -> None:
    q = parse(
        'sum by (version, le) (rate(a_bucket{app="x", route=~"/api/.*"}[5m])) '
        "/ on (version) sum(rate(b_total[1m])) and bool c"
    )
    assert q.selectors == {"a_bucket": {"app", "route"}, "b_total": set(), "c": set()}
    assert q.grouping == {"version", "le"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """Sample name -> label names, from both services' /metrics after some traffic."""
    logs = tmp_path_factory.mktemp("metrics-logs")
    db = tmp_path_factory.mktemp("db") / "tasks.db"
    backend_port, frontend_port = free_port(), free_port()
    common = {"HOST": "127.0.0.1", "OTEL_TRACES_EXPORTER": "none"}
    backend = start(
        "backend",
        [str(VENV_BIN / "backend")],
        logs,
        {**common, "PORT": str(backend_port), "APP_VERSION": "v2", "TASKS_DB": str(db)},
        backend_port,
    )
    frontend = start(
        "frontend",
        [str(VENV_BIN / "frontend")],
        logs,
        {**common, "PORT": str(frontend_port), "BACKEND_URL": backend.url},
        frontend_port,
    )
    with running([backend, frontend]):
        wait_http_ok(backend)
        wait_http_ok(frontend)
        with httpx.Client(timeout=10.0) as client:
            assert client.get(frontend.url + "/api/tasks").status_code == 200
            fault = {"status": 503, "error_rate": 1.0, "delay_ms": 0, "delay_rate": 0.0}
            client.put(backend.url + "/admin/fault", json=fault).raise_for_status()
            assert client.get(frontend.url + "/api/tasks").status_code == 503
            client.delete(backend.url + "/admin/fault").raise_for_status()
            texts = [client.get(p.url + "/metrics").text for p in (backend, frontend)]
    out: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    yield out


@pytest.mark.integration
def test_every_app_metric_and_label_the_dashboard_queries_is_exported(
    dashboard: dict, exported: dict[str, set[str]]
) -> None:
    for expr in expressions(dashboard):
        query = parse(expr)
        assert query.selectors, expr
        for name, matched in query.selectors.items():
            known = ISTIO_METRICS.get(name)
            if known is None:
                assert name in exported, f"{name} (in {expr!r}) is not exported by the services"
                known = exported[name]
            unknown = (matched | query.grouping) - known - TARGET_LABELS
            assert not unknown, f"{name} has no label {sorted(unknown)} (in {expr!r})"


@pytest.mark.integration
def test_services_follow_prometheus_naming(exported: dict[str, set[str]]) -> None:
    ours = {n for n in exported if not n.startswith(("python_", "process_"))}
    assert ours, exported
    for name in ours:
        assert not name.endswith(("_ms", "_milliseconds", "_count_total")), name
        if "duration" in name or "latency" in name:
            assert "_seconds" in name, name
        assert "version" in exported[name], f"{name} has no version label"


def test_dashboard_shows_rate_errors_and_latency_per_version_from_both_sources(
    dashboard: dict,
) -> None:
    exprs = expressions(dashboard)
    for metric, by in (("http_server_requests_total", "version"),
                       ("istio_requests_total", "destination_version")):  # fmt: skip
        rates = [e for e in exprs if metric in e and by in parse(e).grouping]
        assert any("5.." in e for e in rates), f"no error rate by {by} from {metric}"
        assert any("5.." not in e for e in rates), f"no request rate by {by} from {metric}"
    for bucket in ("http_server_request_duration_seconds_bucket",
                   "istio_request_duration_milliseconds_bucket"):  # fmt: skip
        quantiles = {e.split("(")[1].split(",")[0] for e in exprs if bucket in e}
        assert {"0.5", "0.99"} <= quantiles, (bucket, quantiles)
    targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
    datasources = {t["datasource"]["uid"] for t in targets}
    assert datasources == {"${datasource}"}  # chosen at import time
