"""Helpers for the control-loop tests: a mesh on a copy of k8s/, edits, Envoy's routes."""

from __future__ import annotations

import collections
import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from mesh.runner import LocalMesh

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANTS = K8S / "variants"
BACKEND_ROUTES = "backend-service.default.svc.cluster.local:5000"


def copy_k8s(where: Path) -> Path:
    """k8s/ without its variants, at WHERE/k8s: a tree a test may edit."""
    target = where / "k8s"
    shutil.copytree(K8S, target, ignore=shutil.ignore_patterns("variants", "jobs"))
    return target


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@contextlib.contextmanager
def extra_deployment(
    tree: Path, name: str, change: Callable[[dict[str, Any]], None]
) -> Iterator[None]:
    """One more Deployment in TREE while inside: a copy of backend-v1's named NAME (label
    version v1: the v1 subset selects it), CHANGE applied, listed in the kustomization
    right after backend-v1; on exit the kustomization as it was and the file gone."""
    source = tree / "deployments" / "backend-v1.yaml"
    target = tree / "deployments" / f"{name}.yaml"
    target.write_text(source.read_text())

    def named(doc: dict[str, Any]) -> None:
        doc["metadata"]["name"] = name
        change(doc)

    edit_yaml(target, named)
    kustomization = tree / "kustomization.yaml"
    text = kustomization.read_text()
    listed = "  - deployments/backend-v1.yaml\n"
    kustomization.write_text(text.replace(listed, f"{listed}  - deployments/{name}.yaml\n"))
    try:
        yield
    finally:
        kustomization.write_text(text)
        target.unlink()


def set_replicas(tree: Path, deployment: str, replicas: int) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"]["replicas"] = replicas

    edit_yaml(tree / "deployments" / f"{deployment}.yaml", change)


def set_env(tree: Path, deployment: str, name: str, value: str) -> None:
    def change(doc: dict[str, Any]) -> None:
        env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
        env[:] = [e for e in env if e["name"] != name] + [{"name": name, "value": value}]

    edit_yaml(tree / "deployments" / f"{deployment}.yaml", change)


def weighted_http() -> list[dict[str, Any]]:
    """The weighted variant's routes (90% v1, 10% v2, canary header to v2)."""
    patch = yaml.safe_load((VARIANTS / "weighted" / "virtualservice-backend.yaml").read_text())
    return patch["spec"]["http"]


def make_weighted(tree: Path, http: list[dict[str, Any]] | None = None) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"]["http"] = http if http is not None else weighted_http()

    edit_yaml(tree / "istio" / "virtualservice-backend.yaml", change)


def served_routes(admin_url: str, name: str = BACKEND_ROUTES) -> list[dict[str, Any]]:
    """The routes the running Envoy serves for route table NAME (its config dump)."""
    dump = httpx.get(
        f"{admin_url}/config_dump", params={"resource": "dynamic_route_configs"}, timeout=5.0
    ).json()
    for entry in dump.get("configs", []):
        config = entry.get("route_config") or {}
        if config.get("name") == name:
            return [r for vhost in config.get("virtual_hosts", []) for r in vhost["routes"]]
    raise AssertionError(f"Envoy serves no route table {name}")


def served_weights(admin_url: str) -> dict[str, int]:
    """{subset: weight} of the backend's default route, as the running Envoy serves it
    (a single cluster counts as weight 100)."""
    route = served_routes(admin_url)[-1]["route"]
    if "cluster" in route:
        return {route["cluster"].split("|")[2]: 100}
    return {
        c["name"].split("|")[2]: int(c["weight"]) for c in route["weighted_clusters"]["clusters"]
    }


def versions(url: str, n: int) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(n):
            r = client.get(url)
            seen[r.headers.get("x-backend-version", str(r.status_code))] += 1
    return seen


def live_pods(mesh: LocalMesh, deployment: str) -> list[str]:
    return sorted(
        p.name for p in mesh.workloads if p.deployment == deployment and not p.terminating
    )
