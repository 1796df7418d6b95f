"""Dockerfile.backend and Dockerfile.frontend: lint, security scan, and the image contract.

No Docker engine here, so nothing is built: hadolint and checkov read the files, and
the contract (user, command, version, ports, health check) is read from the final
stage and compared with the Kubernetes manifests and pyproject.toml.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.docker.dockerfile import instructions, parse
from tests.docker.tools import DOCKERFILES, ROOT, run, tool

BAD_DOCKERFILE = """\
FROM python:latest
ADD . /app
RUN pip install flask
CMD python /app/app.py
"""


def k8s_container(service: str) -> tuple[dict, dict]:
    """(pod spec, first container) of the Deployment that runs SERVICE's image."""
    for path in sorted((ROOT / "k8s" / "deployments").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            container = pod["containers"][0]
            if container["image"].startswith(f"taskmesh-{service}:"):
                return pod, container
    raise AssertionError(f"no Deployment in k8s/deployments runs taskmesh-{service}")


def test_hadolint_passes_on_both_dockerfiles() -> None:
    result = run([tool("hadolint"), "--no-color", *map(str, DOCKERFILES.values())])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    """Control: the linter is really running and finds the classic mistakes."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE)
    result = run([tool("hadolint"), "--no-color", str(bad)])
    assert result.returncode != 0
    for code in ("DL3007", "DL3020", "DL3025"):
        assert code in result.stdout, result.stdout


def test_checkov_dockerfile_checks_pass(tmp_path: Path) -> None:
    """checkov's Dockerfile framework: no failed check in ours, failures in a bad control."""
    for path in DOCKERFILES.values():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "Dockerfile.bad").write_text(BAD_DOCKERFILE)
    result = run(
        [
            tool("checkov"),
            "-d",
            str(tmp_path),
            "--framework",
            "dockerfile",
            "--skip-download",
            "-o",
            "json",
        ],
        timeout=240,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    passed = [c for r in reports for c in r["results"]["passed_checks"]]

    def files(checks: list[dict]) -> set[str]:
        return {Path(c["file_path"]).name for c in checks}

    ours = [
        f"{c['check_id']} {c['file_path']}: {c['check_name']}"
        for c in failed
        if Path(c["file_path"]).name in {p.name for p in DOCKERFILES.values()}
    ]
    assert ours == [], "checkov failed checks:\n" + "\n".join(ours)
    assert {p.name for p in DOCKERFILES.values()} <= files(passed)
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= {c["check_id"] for c in failed}, "control not caught"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_stages_share_one_pinned_slim_python_311_base(service: str) -> None:
    stages = parse(DOCKERFILES[service]).stages
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    bases = {s.base for s in stages}
    assert len(bases) == 1, f"builder and runtime differ: {bases}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", bases.pop())


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_runs_as_the_k8s_numeric_user(service: str) -> None:
    pod, _ = k8s_container(service)
    user = parse(DOCKERFILES[service]).final.user
    assert user is not None and re.fullmatch(r"\d+(:\d+)?", user), f"numeric USER, got {user}"
    uid, _, gid = user.partition(":")
    assert int(uid) == pod["securityContext"]["runAsUser"]
    assert int(gid or uid) == pod["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_command_is_the_console_entry_point(service: str) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    cmd = parse(DOCKERFILES[service]).final.cmd
    assert cmd == [service]
    assert scripts[service] == f"{service}.__main__:main"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_build_arg_version_sets_app_version(service: str, version: str) -> None:
    final = parse(DOCKERFILES[service], build_args={"VERSION": version}).final
    assert final.env["APP_VERSION"] == version
    assert final.labels["org.opencontainers.image.version"] == version


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_default_version_matches_the_k8s_image(service: str) -> None:
    _, container = k8s_container(service)
    env = {e["name"]: e.get("value") for e in container["env"]}
    final = parse(DOCKERFILES[service]).final
    assert final.env["APP_VERSION"] == env["APP_VERSION"] == container["image"].split(":")[1]


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_port_is_exposed_and_matches_k8s(service: str) -> None:
    _, container = k8s_container(service)
    final = parse(DOCKERFILES[service]).final
    port = int(final.env["PORT"])
    assert final.expose == [port]
    assert port == container["ports"][0]["containerPort"]
    assert final.env["HOST"] == "0.0.0.0"
    assert final.env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_healthcheck_probes_healthz_in_exec_form(service: str) -> None:
    check = parse(DOCKERFILES[service]).final.healthcheck
    assert check is not None and check[0] == "python"
    assert "/healthz" in " ".join(check)


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_no_setting_named_like_a_kubernetes_service_link(service: str) -> None:
    env = parse(DOCKERFILES[service]).final.env
    bad = [k for k in env if k.startswith(("BACKEND_SERVICE_", "FRONTEND_SERVICE_"))]
    assert bad == []


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_dependencies_are_installed_before_the_code_is_copied(service: str) -> None:
    steps = instructions(DOCKERFILES[service].read_text())
    first_code = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and a.startswith(service))
    deps = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "-r requirements.txt" in a)
    manifest = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and "pyproject.toml" in a)
    assert manifest < deps < first_code
    assert all("--no-cache-dir" in a for k, a in steps if k == "RUN" and "pip install" in a)


def test_backend_store_is_a_volume_owned_by_the_app_user() -> None:
    text = DOCKERFILES["backend"].read_text()
    final = parse(DOCKERFILES["backend"]).final
    store_dir = str(Path(final.env["TASKS_DB"]).parent)
    assert final.volumes == [store_dir]
    uid = final.user.split(":")[0] if final.user else "?"
    assert re.search(rf"chown {uid}(:\d+)? {re.escape(store_dir)}\b", text)
