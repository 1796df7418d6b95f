"""Load a manifest tree the way ``kubectl apply -k DIR`` would, keeping file names.

Supported kustomization fields: ``resources`` (files and directories with their
own kustomization, recursively), ``namespace``, ``patches`` (strategic-merge
or JSON6902, from ``path`` or inline ``patch``, with an optional ``target``)
and the older ``patchesStrategicMerge``. Anything else in a kustomization is
reported (TM003) instead of being silently ignored. A directory without a
kustomization is read like ``kubectl apply -R -f DIR``: every YAML file in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.check.findings import Finding, Severity
from mesh.check.patches import is_core, json6902, matches_target, merge

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "patches",
    "patchesStrategicMerge",
}
DEFAULT_NAMESPACE = "default"
# Cluster-scoped kinds that a namespace never applies to.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}


def display_path(path: Path) -> str:
    """A path as the user typed it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


@dataclass
class Resource:
    """One Kubernetes object from one file, after patches."""

    doc: dict[str, Any]
    file: str
    namespace: str

    @property
    def api_version(self) -> str:
        return str(self.doc.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.doc.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def labels(self) -> dict[str, str]:
        return str_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> dict[str, str]:
        return str_map(self.metadata.get("annotations"))

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.doc.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def is_istio(self) -> bool:
        return self.group.endswith("istio.io")

    def finding(self, code: str, severity: Severity, message: str) -> Finding:
        return Finding(self.file, self.kind, self.name, code, severity, message)


@dataclass
class Tree:
    resources: list[Resource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def load_tree(root: Path) -> Tree:
    """Every object under ``root``; problems reading it become TM003 findings."""
    tree = Tree()
    kust = _kustomization_file(root)
    if kust is None:
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")):
            if path.name not in KUSTOMIZATION_NAMES:
                tree.resources += _read_objects(path, None, tree)
    else:
        tree.resources = _load_kustomization(kust, tree, stack=())
    _report_duplicates(tree)
    return tree


def _kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def _problem(tree: Tree, path: Path, message: str, kind: str = "Kustomization") -> None:
    name = path.parent.name if kind == "Kustomization" else path.name
    tree.findings.append(Finding(display_path(path), kind, name, "TM003", Severity.ERROR, message))


def _read_yaml_docs(path: Path, tree: Tree) -> list[Any] | None:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as exc:
        _problem(tree, path, f"cannot read: {exc.strerror}", kind="File")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        _problem(tree, path, f"invalid YAML{line}: {problem}", kind="File")
    return None


def _read_objects(path: Path, namespace: str | None, tree: Tree) -> list[Resource]:
    docs = _read_yaml_docs(path, tree)
    if docs is None:
        return []
    out: list[Resource] = []
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
            _problem(
                tree,
                path,
                f"document {index + 1} is not a Kubernetes object (needs apiVersion and kind)",
                kind="File",
            )
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            docs.extend(doc["items"])
            continue
        res = Resource(doc=doc, file=display_path(path), namespace="")
        res.namespace = _namespace(res, namespace)
        out.append(res)
    return out


def _namespace(res: Resource, override: str | None) -> str:
    if res.kind in CLUSTER_SCOPED:
        return ""
    if override:
        return override
    return str(res.metadata.get("namespace") or DEFAULT_NAMESPACE)


def _load_kustomization(path: Path, tree: Tree, stack: tuple[Path, ...]) -> list[Resource]:
    if path.resolve() in stack:
        _problem(tree, path, "kustomization includes itself (cycle)")
        return []
    stack = (*stack, path.resolve())
    docs = _read_yaml_docs(path, tree)
    if docs is None:
        return []
    kust = docs[0] if docs and isinstance(docs[0], dict) else {}
    for key in sorted(set(kust) - SUPPORTED_FIELDS):
        _problem(
            tree,
            path,
            f"field {key!r} is not supported by mesh check (nor by mesh up); "
            "use resources, namespace and patches",
        )
    base = path.parent
    namespace = kust.get("namespace") or None
    resources: list[Resource] = []
    for entry in kust.get("resources") or []:
        entry = str(entry)
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            _problem(tree, path, f"remote resource {entry!r} cannot be checked offline")
            continue
        target = base / entry
        if target.is_dir():
            sub = _kustomization_file(target)
            if sub is None:
                _problem(tree, path, f"resource directory {entry!r} has no kustomization.yaml")
                continue
            found = _load_kustomization(sub, tree, stack)
            if namespace:
                for res in found:
                    res.namespace = _namespace(res, namespace)
            resources += found
        elif target.is_file():
            resources += _read_objects(target, namespace, tree)
        else:
            _problem(tree, path, f"resource {entry!r} does not exist")
    for patch in _patch_entries(kust, path, tree):
        _apply_patch(patch, resources, path, tree)
    return resources


@dataclass
class _Patch:
    body: Any
    target: dict[str, Any] | None
    origin: str


def _patch_entries(kust: dict[str, Any], path: Path, tree: Tree) -> list[_Patch]:
    base = path.parent
    out: list[_Patch] = []
    for entry in kust.get("patchesStrategicMerge") or []:
        entry = str(entry)
        file = base / entry
        if not file.is_file():
            # patchesStrategicMerge also accepts an inline patch.
            try:
                out.append(_Patch(yaml.safe_load(entry), None, "inline patch"))
            except yaml.YAMLError:
                _problem(tree, path, f"patch file {entry!r} does not exist")
            continue
        for doc in _read_yaml_docs(file, tree) or []:
            out.append(_Patch(doc, None, display_path(file)))
    for entry in kust.get("patches") or []:
        if not isinstance(entry, dict):
            _problem(tree, path, f"patch entry {entry!r} must be a mapping with path or patch")
            continue
        target = entry.get("target") if isinstance(entry.get("target"), dict) else None
        if "path" in entry:
            file = base / str(entry["path"])
            if not file.is_file():
                _problem(tree, path, f"patch file {entry['path']!r} does not exist")
                continue
            for doc in _read_yaml_docs(file, tree) or []:
                out.append(_Patch(doc, target, display_path(file)))
        elif "patch" in entry:
            try:
                out.append(_Patch(yaml.safe_load(str(entry["patch"])), target, "inline patch"))
            except yaml.YAMLError as exc:
                _problem(tree, path, f"inline patch is not valid YAML: {exc}")
        else:
            _problem(tree, path, "patch entry needs path or patch")
    return out


def _apply_patch(patch: _Patch, resources: list[Resource], kust: Path, tree: Tree) -> None:
    body = patch.body
    if patch.target is not None:
        matched = [r for r in resources if matches_target(r, patch.target)]
        what = f"target {patch.target}"
    elif isinstance(body, dict):
        meta = body.get("metadata") or {}
        ident = {"kind": body.get("kind"), "name": meta.get("name")}
        matched = [r for r in resources if r.kind == ident["kind"] and r.name == ident["name"]]
        what = f"{ident['kind']}/{ident['name']}"
    else:
        _problem(tree, kust, f"{patch.origin}: a JSON6902 patch needs a target")
        return
    if not matched:
        _problem(tree, kust, f"{patch.origin}: patch {what} matches no resource")
        return
    for res in matched:
        if isinstance(body, list):
            error = json6902(res.doc, body)
            if error:
                _problem(tree, kust, f"{patch.origin}: {error}")
        elif isinstance(body, dict) and body.get("$patch") == "delete":
            resources.remove(res)
        elif isinstance(body, dict):
            res.doc = merge(res.doc, body, core=is_core(res))


def _report_duplicates(tree: Tree) -> None:
    seen: dict[tuple[str, str, str, str], Resource] = {}
    for res in tree.resources:
        key = (res.group, res.kind, res.namespace, res.name)
        if key in seen:
            tree.findings.append(
                res.finding(
                    "TM004",
                    Severity.ERROR,
                    f"already defined in {seen[key].file}; kubectl apply -k refuses duplicate ids",
                )
            )
        else:
            seen[key] = res
