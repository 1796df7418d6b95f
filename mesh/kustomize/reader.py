"""Read a manifest directory as `kubectl` would deploy it.

With a kustomization, the real kustomize renders it (``mesh.kustomize.build``):
`kubectl kustomize --load-restrictor LoadRestrictionsNone DIR`, the command the
docs and scripts/minikube.sh pipe to `kubectl apply -f -`. Without one, DIR is
read like ``kubectl apply -R -f DIR``: every YAML file in it, here in Python.

The reader never raises on a bad tree: every problem is collected as a
``Problem``, so ``mesh check`` can report them as findings while ``mesh up``
stops at the first one (``mesh.manifests.load``).

A render costs a kubectl process (0.1-0.4 s), and the control loop reads the same
tree twice per generation (``load`` and ``mesh check``): a clean render is reused
while none of the files it read has changed (their contents are hashed).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from mesh.kustomize import files
from mesh.kustomize.build import build
from mesh.kustomize.files import KUSTOMIZATION_NAMES, find_kustomization
from mesh.kustomize.model import Problem, Resource, Tree, display_path


def read_tree(root: Path) -> Tree:
    """Every object under ``root``, every problem met reading it, and the files read."""
    kust = find_kustomization(root)
    if kust is not None:
        return _rendered(kust)
    tree = Tree()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")):
        if path.name not in KUSTOMIZATION_NAMES:
            tree.sources.append(path.resolve())
            tree.resources += _read_objects(path, tree)
    return tree


CACHE_SIZE = 8
# (kustomization, working directory, kubectl) -> (stamp of the files read, tree)
_cache: dict[tuple[Path, str, str], tuple[tuple[Any, ...], Tree]] = {}


def _rendered(kust: Path) -> Tree:
    """The render of ``kust``, from the cache while its files are unchanged (a copy:
    callers may edit the objects)."""
    # file names are relative to the working directory
    key = (kust.resolve(), os.getcwd(), os.environ.get("KUBECTL_BIN", ""))
    hit = _cache.get(key)
    if hit is not None and hit[0] == files.stamp(hit[1].sources):
        return copy.deepcopy(hit[1])
    built = build(kust)
    tree = Tree(built.resources, built.problems, built.sources)
    _cache.pop(key, None)
    if not tree.problems:  # a fix elsewhere (a file created) must not meet a stale refusal
        _cache[key] = (built.stamp, copy.deepcopy(tree))
        while len(_cache) > CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return tree


def _problem(tree: Tree, path: Path, message: str) -> None:
    tree.problems.append(Problem(display_path(path), "File", path.name, message))


def _read_objects(path: Path, tree: Tree) -> list[Resource]:
    try:
        docs: list[Any] = list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        _problem(tree, path, f"cannot read: {exc.strerror}")
        return []
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        _problem(tree, path, f"invalid YAML{line}: {getattr(exc, 'problem', None) or exc}")
        return []
    out: list[Resource] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        why = _not_an_object(doc)
        if why is not None:
            _problem(tree, path, f"document {index + 1} {why}")
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            docs.extend(doc["items"])
            continue
        res = Resource(doc=doc, file=display_path(path), namespace="", index=index)
        res.default_namespace()
        out.append(res)
    return out


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
