"""The tree ``mesh check`` checks: ``mesh.kustomize.read_tree`` plus findings.

Reading is shared with ``mesh up`` (``mesh.kustomize``); this module turns what
the reader could not read into TM003 findings and duplicate objects into TM004,
and gives every resource a ``finding`` method for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from mesh import kustomize
from mesh.check.findings import Finding, Severity
from mesh.kustomize import str_map

__all__ = ["Resource", "Tree", "load_tree", "str_map"]


@dataclass
class Resource(kustomize.Resource):
    """A resource as the rules see it: it can describe a finding about itself."""

    @classmethod
    def of(cls, res: kustomize.Resource) -> Resource:
        return cls(**{f.name: getattr(res, f.name) for f in fields(res)})

    def finding(self, code: str, severity: Severity, message: str) -> Finding:
        return Finding(self.file, self.kind, self.name, code, severity, message)


@dataclass
class Tree:
    resources: list[Resource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def load_tree(root: Path) -> Tree:
    """Every object under ``root``; problems reading it become TM003 findings."""
    read = kustomize.read_tree(root)
    tree = Tree(resources=[Resource.of(r) for r in read.resources])
    tree.findings = [
        Finding(p.file, p.kind, p.name, "TM003", Severity.ERROR, p.message) for p in read.problems
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
