"""What a read produces: objects with their source file (Resource), and Problems."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
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
    """One Kubernetes object as rendered, with the file it came from.

    ``file`` is the resource file (or, for a generated object, the kustomization
    whose generator made it); ``index`` is the document's position in that file."""

    doc: dict[str, Any]
    file: str
    namespace: str
    index: int = 0

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

    def default_namespace(self) -> None:
        """Set ``namespace`` as `kubectl apply` would: the object's, else ``default``
        (none for cluster-scoped kinds)."""
        if self.kind not in CLUSTER_SCOPED:
            self.namespace = str(self.metadata.get("namespace") or DEFAULT_NAMESPACE)


@dataclass(frozen=True)
class Problem:
    """Why (part of) a tree cannot be read, about ``kind``/``name`` in ``file``.

    ``kind`` is ``Kustomization`` (name: its directory), ``File``, or the kind of a
    duplicate object (``duplicate`` set: `mesh check` reports those as TM004)."""

    file: str
    kind: str
    name: str
    message: str
    duplicate: bool = False

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def kustomization_problem(kust_file: Path, message: str) -> Problem:
    return Problem(display_path(kust_file), "Kustomization", kust_file.parent.name, message)


@dataclass
class Tree:
    """Every object a directory renders to, the problems met, and the files read."""

    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)


def identity(res: Resource) -> tuple[str, str, str, str]:
    """What ``kubectl apply`` keys objects by: group, kind, namespace, name."""
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
