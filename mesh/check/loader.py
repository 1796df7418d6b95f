"""The tree ``mesh check`` checks: ``mesh.kustomize.read_tree`` plus findings.

Reading is shared with ``mesh up`` (``mesh.kustomize``, the real kustomize); this
module turns what could not be read into TM003 findings and duplicate objects into TM004,
and gives every resource a ``finding`` method for the rules. A single manifest
file is read on its own, as ``istioctl analyze FILE`` reads it (a kustomization
file stands for its directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from mesh import kustomize
from mesh.check.findings import Finding, Severity
from mesh.kustomize import str_map
from mesh.kustomize.model import CLUSTER_SCOPED  # a file read alone: no kustomization says so

__all__ = ["Resource", "Tree", "load_tree", "str_map"]


@dataclass
class Resource(kustomize.Resource):
    """A resource as the rules see it: it can describe a finding about itself."""

    @classmethod
    def of(cls, res: kustomize.Resource) -> Resource:
        return cls(**{f.name: getattr(res, f.name) for f in fields(res)})

    def finding(self, code: str, severity: Severity, message: str) -> Finding:
        return Finding(self.file, self.namespace, self.kind, self.name, code, severity, message)


@dataclass
class Tree:
    resources: list[Resource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def load_tree(root: Path) -> Tree:
    """Every object under ``root``; problems reading it become TM003 findings, and a
    duplicate object TM004 (kustomize refuses it; a plain directory reads both)."""
    read = read_file(root) if root.is_file() else kustomize.read_tree(root)
    tree = Tree(resources=[Resource.of(r) for r in read.resources])
    tree.findings = [
        Finding(
            p.file,
            "",
            p.kind,
            p.name,
            "TM004" if p.duplicate else "TM003",
            Severity.ERROR,
            p.message,
        )
        for p in read.problems
    ]
    for res, first in kustomize.duplicates(tree.resources):
        tree.findings.append(
            res.finding(
                "TM004",
                Severity.ERROR,
                f"already defined in {first.file}; kubectl apply -k refuses duplicate ids",
            )
        )
    return tree


def read_file(path: Path) -> kustomize.Tree:
    """The objects of one manifest file (its directory's, for a kustomization file)."""
    if path.name in kustomize.KUSTOMIZATION_NAMES:
        return kustomize.read_tree(path.parent)
    tree = kustomize.Tree()
    shown = kustomize.display_path(path)

    def problem(message: str) -> None:
        tree.problems.append(kustomize.Problem(shown, "File", path.name, message))

    try:
        docs: list[Any] = list(yaml.safe_load_all(path.read_bytes()))
    except OSError as exc:
        problem(f"cannot read: {exc.strerror}")
        return tree
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
        problem(f"invalid YAML{line}: {why}")
        return tree
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) and doc[k] for k in ("apiVersion", "kind")
        ):
            problem(f"document {i + 1} is not a Kubernetes object (needs apiVersion and kind)")
            continue
        if doc["kind"] == "List" and isinstance(doc.get("items"), list):
            docs.extend(doc["items"])
            continue
        res = kustomize.Resource(doc=doc, file=shown, namespace="", index=i)
        if res.kind not in CLUSTER_SCOPED:
            res.namespace = str(res.metadata.get("namespace") or "default")
        tree.resources.append(res)
    return tree
