"""Read a kustomization the way `kubectl kustomize` does, for the subset the mesh supports.

Supported kustomization fields: `resources` (files, and directories that hold a
kustomization, recursively), `patches` (entries with `path:` or an inline `patch:`,
optionally a `target` naming kind/name), and `namespace`. A patch is a partial object
(apiVersion/kind/metadata.name) applied as a JSON merge patch (RFC 7386: maps merge,
lists replace, null deletes), which is what kustomize does for custom resources. Any other
kustomization field is an error: nothing is silently ignored.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh.errors import ManifestError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches", "namespace"}


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


def read(directory: Path) -> list[tuple[dict[str, Any], Source]]:
    """Every object DIRECTORY renders to (patched, namespaced), with where it came from."""
    return _load_kustomization(directory, ())
