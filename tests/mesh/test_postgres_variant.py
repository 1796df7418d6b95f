"""k8s/variants/postgres read by the local mesh: the StatefulSet as a PostgreSQL process,
secretKeyRef env from the generated Secret, postgresql:// URLs to the TCP listener,
and the translation of a TCP Service port (tcp_proxy, no HTTP options on its cluster)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mesh.errors import RunnerError, TranslationError
from mesh.loop.workloads import blueprint
from mesh.manifests import load
from mesh.translate.tcp import is_tcp, refuse_with_sidecars, tcp_proxy

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANT = K8S / "variants" / "postgres"
LISTENERS = {("backend-service", 5000): 15500, ("frontend-service", 8000): 15800,
             ("postgres", 5432): 15432}  # fmt: skip


def _password() -> str:
    line = (VARIANT / "postgres.env").read_text().strip()
    assert line.startswith("POSTGRES_PASSWORD=")
    return line.split("=", 1)[1]


def test_the_variant_lists_the_base_without_the_sqlite_claim() -> None:
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    mine = yaml.safe_load((VARIANT / "kustomization.yaml").read_text())["resources"]
    inherited = [r for r in mine if r.startswith("../../")]
    assert inherited == [f"../../{r}" for r in base if r != "storage/tasks-pvc.yaml"]


def test_backends_reach_postgres_through_the_local_tcp_listener(tmp_path: Path) -> None:
    m = load(VARIANT)
    backends = [d for d in m.deployments if d.template_labels.get("app") == "backend"]
    assert backends and all(d.kind == "Deployment" for d in backends)
    for d in backends:
        env = blueprint(d, m, LISTENERS, tmp_path).pod_env(f"{d.name}-0", 31000)
        assert env["TASKS_DB"] == "postgresql://taskmesh@127.0.0.1:15432/tasks"
        assert env["PGPASSWORD"] == _password()
        volumes = d.raw["spec"]["template"]["spec"]["volumes"]
        assert "tasks-store" not in [v["name"] for v in volumes]  # free to scale


def test_the_statefulset_runs_as_a_local_server_with_data_under_the_state_dir(
    tmp_path: Path,
) -> None:
    m = load(VARIANT)
    (db,) = [d for d in m.deployments if d.kind == "StatefulSet"]
    bp = blueprint(db, m, LISTENERS, tmp_path)
    assert bp.template.argv[1:] == (
        "-m",
        "mesh.pgserver",
        str(tmp_path / "postgres" / "postgres-0"),
    )
    env = bp.pod_env("postgres-0", 31432)
    assert env["POSTGRES_PASSWORD"] == _password() and env["PORT"] == "31432"
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == ("taskmesh", "tasks")
    assert bp.template.probes.readiness is not None and bp.template.probes.readiness.path is None


def test_two_postgres_replicas_and_a_missing_secret_are_refused_by_name(tmp_path: Path) -> None:
    m = load(VARIANT)
    (db,) = [d for d in m.deployments if d.kind == "StatefulSet"]
    twice = copy.copy(db)
    twice.replicas = 2
    with pytest.raises(RunnerError, match=r"StatefulSet/postgres: spec.replicas: .*one PostgreSQL"):
        blueprint(twice, m, LISTENERS, tmp_path)
    m.objects = [o for o in m.objects if o.kind != "Secret"]
    with pytest.raises(RunnerError, match=r"env\[2\]\.valueFrom\.secretKeyRef: no Secret"):
        blueprint(db, m, LISTENERS, tmp_path)


def test_a_tcp_port_is_a_tcp_proxy_with_the_destination_rule_timeouts() -> None:
    m = load(VARIANT)
    svc = next(s for s in m.services if s.name == "postgres")
    assert is_tcp(svc.ports[0])
    assert not any(is_tcp(p) for s in m.services if s.name != "postgres" for p in s.ports)
    dr = next(d for d in m.destination_rules if d.name == "postgres")
    dr.raw["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["idleTimeout"] = "300s"
    config = tcp_proxy(m, svc, svc.ports[0])["typed_config"]
    assert config["cluster"] == "outbound|5432||postgres.default.svc.cluster.local"
    assert config["idle_timeout"] == "300s"
    with pytest.raises(TranslationError, match="only without --sidecars"):
        refuse_with_sidecars(m)
    refuse_with_sidecars(load(K8S))  # HTTP only: nothing to refuse
