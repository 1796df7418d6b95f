"""``check_tree(DIR)``: load, validate schemas, run every cross-object rule."""

from __future__ import annotations

from pathlib import Path

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index
from mesh.check.loader import load_tree
from mesh.check.rules import ALL_RULES, local_mesh
from mesh.check.schema import check_schemas

IGNORED_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def check_tree(root: Path) -> list[Finding]:
    """All findings for the tree at ``root``, ordered by file, then object."""
    tree = load_tree(root)
    findings = list(tree.findings)
    findings += check_schemas(tree.resources)
    # istioctl analyze leaves these namespaces out (pkg/kube/inject IgnoredNamespaces)
    index = Index([r for r in tree.resources if r.namespace not in IGNORED_NAMESPACES])
    for rule in ALL_RULES:
        findings += rule(index)
    # What `mesh up` would refuse, unless Istio's schema check already explains it.
    invalid = {(f.file, f.namespace, f.kind, f.name) for f in findings if f.code == "IST0106"}
    findings += [
        f
        for f in local_mesh.translation(root, tree.resources)
        if (f.file, f.namespace, f.kind, f.name) not in invalid
    ]
    unique = list(dict.fromkeys(findings))
    return sorted(
        unique,
        key=lambda f: (
            f.file,
            f.namespace,
            f.kind,
            f.name,
            SEVERITY_ORDER[f.severity],
            f.code,
            f.message,
        ),
    )
