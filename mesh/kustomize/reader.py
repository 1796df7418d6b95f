"""Read a manifest tree the way ``kubectl apply -k DIR`` would, keeping file names.

Supported kustomization fields: ``resources`` (files and directories with their
own kustomization, recursively), ``namespace``, ``patches`` (strategic-merge
or JSON6902, from ``path`` or inline ``patch``, with an optional ``target``)
and the older ``patchesStrategicMerge``. A directory without a kustomization
is read like ``kubectl apply -R -f DIR``: every YAML file in it.

The reader never raises on a bad tree: every problem (anything else in a
kustomization, a missing file, invalid YAML, a patch that matches nothing) is
collected as a ``Problem``, so ``mesh check`` can report them all as findings
while ``mesh up`` stops at the first one (``mesh.manifests.load``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.kustomize.patches import is_core, json6902, matches_target, merge

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "patches",
    "patchesStrategicMerge",
}
PATCH_FIELDS = {"path", "patch", "target"}
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


def str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


@dataclass
class Resource:
    """One Kubernetes object from one file, after patches.

    ``index`` is the document's position in ``file``; ``patched_by`` names the
    patch files (or ``inline patch``) applied to it, in order."""

    doc: dict[str, Any]
    file: str
    namespace: str
    index: int = 0
    patched_by: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class Problem:
    """Why (part of) a tree cannot be read. ``kind`` is ``Kustomization`` or ``File``."""

    file: str
    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class Tree:
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def read_tree(root: Path) -> Tree:
    """Every object under ``root``, and every problem met reading it."""
    tree = Tree()
    kust = find_kustomization(root)
    if kust is None:
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")):
            if path.name not in KUSTOMIZATION_NAMES:
                tree.resources += _read_objects(path, None, tree)
    else:
        tree.resources = _load_kustomization(kust, tree, stack=())
    return tree


def identity(res: Resource) -> tuple[str, str, str, str]:
    """What ``kubectl apply -k`` keys objects by: group, kind, namespace, name."""
    return (res.group, res.kind, res.namespace, res.name)


def duplicates(
    resources: list[Resource], key: Callable[[Resource], Hashable] = identity
) -> Iterator[tuple[Resource, Resource]]:
    """Each resource whose key an earlier one already has, with that earlier one."""
    seen: dict[Hashable, Resource] = {}
    for res in resources:
        first = seen.setdefault(key(res), res)
        if first is not res:
            yield res, first


def _problem(tree: Tree, path: Path, message: str, kind: str = "Kustomization") -> None:
    name = path.parent.name if kind == "Kustomization" else path.name
    tree.problems.append(Problem(display_path(path), kind, name, message))


def _read_yaml_docs(path: Path, tree: Tree) -> list[Any] | None:
    """The documents of ``path`` (None where a document is empty), or None if unreadable."""
    try:
        return list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        _problem(tree, path, f"cannot read: {exc.strerror}", kind="File")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        _problem(tree, path, f"invalid YAML{line}: {problem}", kind="File")
    return None


def _not_an_object(doc: Any) -> str | None:
    """Why ``doc`` is not a Kubernetes object, or None."""
    if not isinstance(doc, dict):
        return "is not a Kubernetes object (needs apiVersion and kind)"
    missing = [k for k in ("apiVersion", "kind") if not isinstance(doc.get(k), str) or not doc[k]]
    if missing:
        return (
            f"is not a Kubernetes object: missing {' and '.join(missing)} "
            "(needs apiVersion and kind)"
        )
    return None


def _read_objects(path: Path, namespace: str | None, tree: Tree) -> list[Resource]:
    docs = _read_yaml_docs(path, tree)
    if docs is None:
        return []
    out: list[Resource] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        why = _not_an_object(doc)
        if why is not None:
            _problem(tree, path, f"document {index + 1} {why}", kind="File")
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            docs.extend(doc["items"])
            continue
        res = Resource(doc=doc, file=display_path(path), namespace="", index=index)
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
    kust = docs[0] if docs else None
    if kust is None:
        kust = {}
    if not isinstance(kust, dict):
        _problem(tree, path, "a kustomization must be a mapping")
        return []
    for key in sorted(set(kust) - SUPPORTED_FIELDS):
        _problem(
            tree,
            path,
            f"field {key!r} is not supported by the local mesh (mesh up, mesh check); "
            "use resources, namespace and patches",
        )
    base = path.parent
    namespace = kust.get("namespace") or None
    if namespace is not None and not isinstance(namespace, str):
        _problem(tree, path, f"namespace must be a string, not {namespace!r}")
        namespace = None
    resources: list[Resource] = []
    for i, entry in enumerate(kust.get("resources") or []):
        if not isinstance(entry, str):
            _problem(tree, path, f"resources[{i}] must be a path, not {entry!r}")
            continue
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            _problem(tree, path, f"remote resource {entry!r} cannot be read offline")
            continue
        target = base / entry
        if target.is_dir():
            sub = find_kustomization(target)
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
            if doc is not None:
                out.append(_Patch(doc, None, display_path(file)))
    for i, entry in enumerate(kust.get("patches") or []):
        if not isinstance(entry, dict):
            _problem(tree, path, f"patch entry {entry!r} must be a mapping with path or patch")
            continue
        for key in sorted(set(entry) - PATCH_FIELDS):
            _problem(tree, path, f"patches[{i}]: field {key!r} is not supported")
        target = entry.get("target") if isinstance(entry.get("target"), dict) else None
        if "path" in entry:
            file = base / str(entry["path"])
            if not file.is_file():
                _problem(tree, path, f"patch file {entry['path']!r} does not exist")
                continue
            for doc in _read_yaml_docs(file, tree) or []:
                if doc is not None:
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
        else:
            _problem(tree, kust, f"{patch.origin}: a patch must be a mapping or a JSON6902 list")
            return
        res.patched_by = (*res.patched_by, patch.origin)
