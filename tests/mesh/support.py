"""Helpers for the mesh tests: overlay directories, translation, finding parts of a config."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from mesh.manifests import Manifests, load
from mesh.translate import compose_placement, local_placement, translate
from mesh.translate.placement import sequential_instance_ports

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VARIANTS = K8S / "variants"
#: the secure-gateway variant's demo credential (CA, server and client pairs)
CREDENTIAL = VARIANTS / "secure-gateway" / "credential"


def overlay(
    where: Path,
    patches: list[dict[str, Any]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    base: Path = K8S,
) -> Path:
    """A kustomization in WHERE over BASE with merge PATCHES and EXTRA objects."""
    where.mkdir(parents=True, exist_ok=True)
    resources = [os.path.relpath(base, where)]
    if extra:
        (where / "extra.yaml").write_text(yaml.safe_dump_all(extra, sort_keys=False))
        resources.append("extra.yaml")
    kust: dict[str, Any] = {"resources": resources}
    if patches:
        kust["patches"] = []
        for i, patch in enumerate(patches):
            name = f"patch-{i}.yaml"
            (where / name).write_text(yaml.safe_dump(patch, sort_keys=False))
            kust["patches"].append({"path": name})
    (where / "kustomization.yaml").write_text(yaml.safe_dump(kust, sort_keys=False))
    return where


def vs_patch(name: str, http: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"http": http, **spec},
    }


def pem_files(
    directory: Path = CREDENTIAL, keys: tuple[str, ...] = ("tls.crt", "tls.key")
) -> dict[str, str]:
    """KEYS -> the text of those files of DIRECTORY (a Secret's data, as kubectl reads it)."""
    return {k: (directory / k).read_text() for k in keys}


def tls_secret(
    name: str, files: dict[str, str], namespace: str | None = None, encoded: bool = False
) -> dict[str, Any]:
    """A kubernetes.io/tls Secret NAME holding FILES (key -> text), in NAMESPACE (else the
    manifests' default); ENCODED: as base64 ``data`` (kubectl create secret), not
    ``stringData``."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
    doc["type"] = "kubernetes.io/tls"
    if encoded:
        doc["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}
    else:
        doc["stringData"] = files
    return doc


def telemetry(name: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    """An Istio Telemetry object NAME (in NAMESPACE, else the manifests' default) with SPEC."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": meta,
        "spec": spec,
    }


def dr_patch(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": spec,
    }


def local_config(directory: Path | Manifests, first_port: int = 20000) -> dict[str, Any]:
    manifests = directory if isinstance(directory, Manifests) else load(directory)
    ports = sequential_instance_ports(manifests, first_port)
    return translate(manifests, local_placement(manifests, ports))


def compose_config(directory: Path) -> dict[str, Any]:
    manifests = load(directory)
    return translate(manifests, compose_placement(manifests))


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    for c in config["static_resources"]["clusters"]:
        if c["name"] == name:
            return c
    raise AssertionError(
        f"no cluster {name}: {[c['name'] for c in config['static_resources']['clusters']]}"
    )


def listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in config["static_resources"]["listeners"]:
        if entry["name"] == name:
            return entry
    names = [entry["name"] for entry in config["static_resources"]["listeners"]]
    raise AssertionError(f"no listener {name}: {names}")


def hcm(config: dict[str, Any], listener_name: str) -> dict[str, Any]:
    return listener(config, listener_name)["filter_chains"][0]["filters"][0]["typed_config"]


def routes(config: dict[str, Any], listener_name: str, vhost: int = 0) -> list[dict[str, Any]]:
    return hcm(config, listener_name)["route_config"]["virtual_hosts"][vhost]["routes"]


BACKEND = "backend-service.default.svc.cluster.local"
BACKEND_LISTENER = f"outbound_{BACKEND}:5000"
GATEWAY_LISTENER = "gateway_80"


def backend_cluster(subset: str = "") -> str:
    return f"outbound|5000|{subset}|{BACKEND}"
