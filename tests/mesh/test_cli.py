"""The mesh subcommands of this area, through `mesh.cli.main` (no processes)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from mesh.cli import CliError
from mesh.cli import main as mesh_main
from mesh.commands.fault import fault_body, targets
from mesh.commands.up import service_ports
from mesh.state import InstanceState
from tests.mesh.support import K8S, compose_config, local_config


@pytest.mark.parametrize("target", ["local", "compose"])
def test_envoy_config_prints_the_translation(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh_main(["envoy-config", str(K8S), "--target", target]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = local_config(K8S) if target == "local" else compose_config(K8S)
    assert printed == expected


def test_envoy_config_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"
    assert mesh_main(["envoy-config", str(K8S), "--admin-port", "16000", "-o", str(out)]) == 0
    assert (
        yaml.safe_load(out.read_text())["admin"]["address"]["socket_address"]["port_value"] == 16000
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["envoy-config", "no/such/dir"], "mesh envoy-config: no/such/dir: not a directory"),
        (["status", "--state-dir", "{tmp}"], "mesh status: no running mesh"),
        (["fault", "backend-v1-0", "--state-dir", "{tmp}"], "mesh fault: no running mesh"),
        (["up", "no/such/dir"], "mesh up: no/such/dir: not a directory"),
    ],
)
def test_user_errors_are_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert mesh_main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_fault_targets_a_replica_or_every_replica_of_a_deployment() -> None:
    instances = [
        InstanceState("backend-v1-0", "backend-v1", "taskmesh-backend:v1", 1, 1),
        InstanceState("backend-v1-1", "backend-v1", "taskmesh-backend:v1", 2, 2),
        InstanceState("backend-v2-0", "backend-v2", "taskmesh-backend:v2", 3, 3),
    ]
    assert [i.name for i in targets(instances, "backend-v1-1")] == ["backend-v1-1"]
    assert [i.name for i in targets(instances, "backend-v1")] == ["backend-v1-0", "backend-v1-1"]
    with pytest.raises(CliError, match="no workload 'frontend-0'"):
        targets(instances, "frontend-0")


def test_fault_body_defaults() -> None:
    args = argparse.Namespace(status=503, error_rate=None, delay_ms=0, delay_rate=None)
    assert fault_body(args) == {"status": 503, "error_rate": 1.0, "delay_ms": 0, "delay_rate": 0.0}
    args.delay_ms = 200
    assert fault_body(args) == {
        "status": 503,
        "error_rate": 0.0,
        "delay_ms": 200,
        "delay_rate": 1.0,
    }


def test_up_service_port_options() -> None:
    args = argparse.Namespace(service_port=["frontend-service=9000"], backend_port=9500)
    assert service_ports(args) == {"frontend-service": 9000, "backend-service": 9500}
    with pytest.raises(CliError, match="expected NAME=PORT"):
        service_ports(argparse.Namespace(service_port=["oops"], backend_port=None))


def test_a_reader_that_leaves_early_ends_the_output_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mesh check --codes | head -1`: no BrokenPipeError traceback, exit 0."""
    import io
    import os

    from mesh.cli import main

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    stdout = io.TextIOWrapper(os.fdopen(write_end, "wb"), write_through=False)
    monkeypatch.setattr("sys.stdout", stdout)
    assert main(["check", "--codes"]) == 0
    assert capsys.readouterr().err == ""
