"""TM108: an env URL that calls a Service on a port it does not have, resolved as a pod's
DNS resolves a host (mesh/check/rules/env_urls.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.check import check_tree
from mesh.check.rules.env_urls import service_of
from tests.mesh.support import overlay

BASE = Path(__file__).parent / "fixtures" / "base"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("backend-service", ("backend-service", "default")),
        ("backend-service.shop", ("backend-service", "shop")),
        ("backend-service.shop.svc", ("backend-service", "shop")),
        ("backend-service.shop.svc.cluster.local", ("backend-service", "shop")),
        ("Backend-Service.shop.svc.cluster.local.", ("backend-service", "shop")),
        ("api.example.com", None),
        ("a.b.svc.cluster.other", None),
    ],
)
def test_a_host_resolves_as_cluster_dns_does(host: str, expected: tuple[str, str] | None) -> None:
    assert service_of(host, "default") == expected


def _env(tmp_path: Path, *env: dict[str, Any]) -> list[str]:
    """TM108 messages when the frontend's container has ENV."""
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "frontend"},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "frontend", "env": list(env)}]}}}}  # fmt: skip
    found = check_tree(overlay(tmp_path / "t", patches=[patch], base=BASE))
    return [f.message for f in found if f.code == "TM108"]


def test_each_form_of_the_services_name_is_checked(tmp_path: Path) -> None:
    found = _env(
        tmp_path,
        {"name": "A", "value": "http://backend-service.default:5001/api"},
        {"name": "B", "value": "http://backend-service.default.svc.cluster.local"},
        {"name": "C", "value": "first http://backend-service:5000 then https://backend-service"},
    )
    assert found == [
        "env A: http://backend-service.default:5001 calls port 5001 of Service "
        "backend-service, which has no such port (its ports: 5000); the call finds nothing "
        "listening",
        "env B: http://backend-service.default.svc.cluster.local calls port 80 (http's "
        "default) of Service backend-service, which has no such port (its ports: 5000); the "
        "call finds nothing listening",
        "env C: https://backend-service calls port 443 (https's default) of Service "
        "backend-service, which has no such port (its ports: 5000); the call finds nothing "
        "listening",
    ]


def test_what_is_not_a_services_port_is_left_alone(tmp_path: Path) -> None:
    assert not _env(
        tmp_path,
        {"name": "OK", "value": "http://backend-service:5000/api/tasks"},
        {"name": "OTHER_NS", "value": "http://backend-service.elsewhere:5001"},  # no such Service
        {"name": "EXTERNAL", "value": "https://api.example.com:8443"},
        {"name": "NO_DEFAULT", "value": "redis://backend-service"},  # no port it implies
        {"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PLAIN", "value": "backend-service:5001"},  # no scheme: not a URL
    )
