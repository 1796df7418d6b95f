"""Read a manifest directory the way `kubectl apply -k DIR` would, into typed models.

Supported kustomization fields: `resources` (files, and directories that hold a
kustomization, recursively), `patches` (entries with `path:` or an inline `patch:`,
optionally a `target` naming kind/name), and `namespace`. A patch is a partial object
(apiVersion/kind/metadata.name) applied as a JSON merge patch (RFC 7386: maps merge,
lists replace, null deletes), which is what kustomize does for custom resources. Any other
kustomization field is an error: nothing is silently ignored.

Every object keeps the file and document index it came from, so errors can name them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.errors import ManifestError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches", "namespace"}
# Kinds the local mesh reads but does not enforce (reported by `mesh up`).
NOT_ENFORCED_NOTES = {
    "PeerAuthentication": "no mTLS: plain HTTP on loopback",
    "AuthorizationPolicy": "no authorization checks",
    "Telemetry": "Envoy access logs are always on (stdout, Istio's text format)",
    "PersistentVolumeClaim": "one SQLite file under the state dir instead",
}


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)


@dataclass(frozen=True)
class Source:
    """Where an object came from: file and 0-based document index (and patch files)."""

    file: str
    index: int = 0
    patched_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.file if self.index == 0 else f"{self.file}[{self.index}]"


@dataclass
class Obj:
    """One Kubernetes object as read (after patches and namespace)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    raw: dict[str, Any]
    source: Source

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}

    def where(self) -> str:
        """`file: Kind/name` prefix for messages."""
        return f"{self.source}: {self.ref}"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    field_path: str | None = None  # valueFrom.fieldRef.fieldPath


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    env: tuple[EnvVar, ...]
    ports: tuple[ContainerPort, ...]


@dataclass
class Deployment(Obj):
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    template_labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()

    def instance_names(self) -> list[str]:
        """Local name of each replica: `<deployment>-<index>`."""
        return [f"{self.name}-{i}" for i in range(self.replicas)]


@dataclass(frozen=True)
class ServicePort:
    port: int
    name: str | None
    target_port: int | str | None
    app_protocol: str | None
    index: int


@dataclass
class Service(Obj):
    selector: dict[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass
class ServiceAccount(Obj):
    pass


@dataclass
class Gateway(Obj):
    pass


@dataclass
class VirtualService(Obj):
    pass


@dataclass
class DestinationRule(Obj):
    pass


@dataclass
class Manifests:
    """Everything DIR renders to, by kind. `other` holds kinds kept raw."""

    root: str
    objects: list[Obj]

    def of(self, cls: type[Obj]) -> list[Any]:
        return [o for o in self.objects if type(o) is cls]

    @property
    def deployments(self) -> list[Deployment]:
        return self.of(Deployment)

    @property
    def services(self) -> list[Service]:
        return self.of(Service)

    @property
    def service_accounts(self) -> list[ServiceAccount]:
        return self.of(ServiceAccount)

    @property
    def gateways(self) -> list[Gateway]:
        return self.of(Gateway)

    @property
    def virtual_services(self) -> list[VirtualService]:
        return self.of(VirtualService)

    @property
    def destination_rules(self) -> list[DestinationRule]:
        return self.of(DestinationRule)

    @property
    def other(self) -> list[Obj]:
        return self.of(Obj)

    def not_enforced(self) -> list[tuple[Obj, str]]:
        """Objects read but not enforced by the local mesh, with the reason."""
        return [(o, NOT_ENFORCED_NOTES.get(o.kind, "ignored")) for o in self.other]


# --------------------------------------------------------------------------- loading


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _read_yaml_docs(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{display_path(path)}: cannot read: {exc.strerror}") from exc
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{display_path(path)}:{where}: invalid YAML: {problem}") from exc


def _raw_objects(path: Path) -> list[tuple[dict[str, Any], Source]]:
    out = []
    for index, doc in enumerate(_read_yaml_docs(path)):
        if doc is None:
            continue
        where = f"{display_path(path)}" + (f"[{index}]" if index else "")
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: a manifest must be a mapping")
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ManifestError(f"{where}: missing {key}")
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise ManifestError(f"{where}: {doc['kind']}: missing metadata.name")
        out.append((doc, Source(display_path(path), index)))
    return out


def _object_id(doc: dict[str, Any]) -> tuple[str, str]:
    return (doc["kind"], doc["metadata"]["name"])


def _load_kustomization(directory: Path, stack: tuple[Path, ...]) -> list[tuple[dict, Source]]:
    directory = directory.resolve()
    if directory in stack:
        raise ManifestError(f"{display_path(directory)}: kustomization includes itself")
    kfile = find_kustomization(directory)
    if kfile is None:
        raise ManifestError(
            f"{display_path(directory)}: no kustomization.yaml "
            f"(expected a directory that `kubectl apply -k` accepts)"
        )
    docs = _read_yaml_docs(kfile)
    kust = docs[0] if docs else None
    where = display_path(kfile)
    if not isinstance(kust, dict):
        raise ManifestError(f"{where}: a kustomization must be a mapping")
    unknown = sorted(set(kust) - SUPPORTED_KUSTOMIZATION_KEYS)
    if unknown:
        raise ManifestError(
            f"{where}: {unknown[0]} is not supported by the local mesh "
            f"(supported: resources, patches, namespace)"
        )
    objects: list[tuple[dict, Source]] = []
    seen: dict[tuple[str, str], Source] = {}
    for i, entry in enumerate(kust.get("resources") or []):
        if not isinstance(entry, str):
            raise ManifestError(f"{where}: resources[{i}] must be a path")
        if "://" in entry or entry.startswith("github.com/"):
            raise ManifestError(f"{where}: resources[{i}]: remote resources are not supported")
        path = directory / entry
        if path.is_dir():
            found = _load_kustomization(path, (*stack, directory))
        elif path.is_file():
            found = _raw_objects(path)
        else:
            raise ManifestError(f"{where}: resources[{i}]: {entry} does not exist")
        for doc, source in found:
            key = _object_id(doc)
            if key in seen:
                raise ManifestError(
                    f"{source}: {key[0]}/{key[1]} is already defined in {seen[key]}"
                )
            seen[key] = source
            objects.append((doc, source))
    for i, entry in enumerate(kust.get("patches") or []):
        objects = _apply_patch(objects, entry, directory, f"{where}: patches[{i}]")
    namespace = kust.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str) or not namespace:
            raise ManifestError(f"{where}: namespace must be a non-empty string")
        for doc, _ in objects:
            doc["metadata"]["namespace"] = namespace
    return objects


def _apply_patch(
    objects: list[tuple[dict, Source]], entry: Any, directory: Path, where: str
) -> list[tuple[dict, Source]]:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: must be a mapping with path: or patch:")
    unknown = sorted(set(entry) - {"path", "patch", "target"})
    if unknown:
        raise ManifestError(f"{where}: {unknown[0]} is not supported by the local mesh")
    if "path" in entry:
        patch_file = directory / str(entry["path"])
        docs = [d for d in _read_yaml_docs(patch_file) if d is not None]
        origin = display_path(patch_file)
    elif "patch" in entry:
        try:
            docs = [d for d in yaml.safe_load_all(str(entry["patch"])) if d is not None]
        except yaml.YAMLError as exc:
            raise ManifestError(f"{where}: invalid YAML in patch") from exc
        origin = where.split(":")[0]
    else:
        raise ManifestError(f"{where}: needs path: or patch:")
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ManifestError(f"{where}: a patch must be one partial object")
    patch = docs[0]
    if any(k.startswith("$") for k in _all_keys(patch)) or (
        isinstance(patch, dict) and "op" in patch
    ):
        raise ManifestError(f"{where}: only merge patches are supported (no JSON 6902 ops)")
    target = entry.get("target") or {}
    if not isinstance(target, dict) or set(target) - {"kind", "name"}:
        raise ManifestError(f"{where}: target supports only kind and name")
    kind = target.get("kind") or patch.get("kind")
    name = target.get("name") or (patch.get("metadata") or {}).get("name")
    if not kind or not name:
        raise ManifestError(f"{where}: the patch must name its kind and metadata.name")
    matches = [i for i, (doc, _) in enumerate(objects) if _object_id(doc) == (kind, name)]
    if not matches:
        raise ManifestError(f"{where}: no {kind}/{name} to patch")
    out = list(objects)
    for i in matches:
        doc, source = out[i]
        if "/" not in doc["apiVersion"] or doc["apiVersion"].startswith("apps/"):
            _refuse_strategic_lists(patch, where, kind)
        patched = merge_patch(doc, patch)
        patched["metadata"]["name"] = name
        out[i] = (patched, Source(source.file, source.index, (*source.patched_by, origin)))
    return out


def _all_keys(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _all_keys(v)
    elif isinstance(value, list):
        for item in value:
            yield from _all_keys(item)


def _refuse_strategic_lists(patch: Any, where: str, kind: str, path: str = "") -> None:
    """Built-in kinds get a strategic merge from kustomize (lists merged by key), which
    the local mesh does not implement: refuse a list in such a patch rather than guess."""
    if isinstance(patch, dict):
        for key, value in patch.items():
            _refuse_strategic_lists(value, where, kind, f"{path}.{key}" if path else key)
    elif isinstance(patch, list):
        raise ManifestError(
            f"{where}: {kind} {path}: lists in patches of built-in kinds are merged by "
            f"kustomize's strategic merge, which the local mesh does not implement"
        )


def load(directory: str | Path) -> Manifests:
    """Read DIR like `kubectl apply -k DIR`; raise ManifestError naming the file."""
    path = Path(directory)
    if not path.is_dir():
        raise ManifestError(f"{directory}: not a directory")
    raw = _load_kustomization(path, ())
    objects = [_model(doc, source) for doc, source in raw]
    return Manifests(root=display_path(path), objects=objects)


# --------------------------------------------------------------------------- models


def _labels(value: Any, where: str, field_path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: {field_path} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _model(doc: dict[str, Any], source: Source) -> Obj:
    meta = doc["metadata"]
    base = {
        "api_version": doc["apiVersion"],
        "kind": doc["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace") or "default",
        "raw": doc,
        "source": source,
    }
    kind, group = doc["kind"], doc["apiVersion"].split("/")[0]
    if kind == "Deployment" and group == "apps":
        return _deployment(doc, base)
    if kind == "Service" and doc["apiVersion"] == "v1":
        return _service(doc, base)
    if kind == "ServiceAccount" and doc["apiVersion"] == "v1":
        return ServiceAccount(**base)
    if group == "networking.istio.io":
        cls = {"Gateway": Gateway, "VirtualService": VirtualService}.get(kind)
        cls = cls or {"DestinationRule": DestinationRule}.get(kind)
        if cls is not None:
            if not isinstance(doc.get("spec"), dict):
                raise ManifestError(f"{source}: {kind}/{meta['name']}: missing spec")
            return cls(**base)
    return Obj(**base)


def _deployment(doc: dict[str, Any], base: dict[str, Any]) -> Deployment:
    where = f"{base['source']}: Deployment/{base['name']}"
    spec = doc.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise ManifestError(f"{where}: spec.replicas must be a non-negative integer")
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    containers = []
    for ci, c in enumerate(pod.get("containers") or []):
        cpath = f"spec.template.spec.containers[{ci}]"
        if not isinstance(c, dict) or not isinstance(c.get("image"), str):
            raise ManifestError(f"{where}: {cpath}.image is missing")
        env = []
        for ei, e in enumerate(c.get("env") or []):
            epath = f"{cpath}.env[{ei}]"
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise ManifestError(f"{where}: {epath}.name is missing")
            if "valueFrom" in e:
                ref = (e["valueFrom"] or {}).get("fieldRef") or {}
                if set(e["valueFrom"] or {}) != {"fieldRef"} or "fieldPath" not in ref:
                    raise ManifestError(
                        f"{where}: {epath}.valueFrom: only fieldRef is supported by the local mesh"
                    )
                env.append(EnvVar(e["name"], field_path=str(ref["fieldPath"])))
            else:
                value = e.get("value")
                env.append(EnvVar(e["name"], value="" if value is None else str(value)))
        ports = tuple(
            ContainerPort(int(p["containerPort"]), p.get("name"))
            for p in (c.get("ports") or [])
            if isinstance(p, dict) and "containerPort" in p
        )
        containers.append(Container(str(c.get("name", "")), c["image"], tuple(env), ports))
    return Deployment(
        **base,
        replicas=replicas,
        labels=_labels(doc["metadata"].get("labels"), where, "metadata.labels"),
        template_labels=_labels(
            (template.get("metadata") or {}).get("labels"), where, "spec.template.metadata.labels"
        ),
        containers=tuple(containers),
    )


def _service(doc: dict[str, Any], base: dict[str, Any]) -> Service:
    where = f"{base['source']}: Service/{base['name']}"
    spec = doc.get("spec") or {}
    ports = []
    for i, p in enumerate(spec.get("ports") or []):
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            raise ManifestError(f"{where}: spec.ports[{i}].port must be an integer")
        ports.append(
            ServicePort(
                port=p["port"],
                name=p.get("name"),
                target_port=p.get("targetPort"),
                app_protocol=p.get("appProtocol"),
                index=i,
            )
        )
    return Service(
        **base,
        selector=_labels(spec.get("selector"), where, "spec.selector"),
        ports=tuple(ports),
    )
