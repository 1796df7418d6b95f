"""The one kustomization reader of the project, shared by `mesh up` and `mesh check`.

``read_tree(DIR)`` reads DIR as ``kubectl apply -k DIR`` would (``reader``),
applying kustomize's patches (``patches``); it collects problems instead of
raising, so each caller decides: ``mesh check`` reports them as findings,
``mesh.manifests.load`` raises ManifestError on the first.
"""

from mesh.kustomize.patches import is_core, json6902, matches_target, merge
from mesh.kustomize.reader import (
    KUSTOMIZATION_NAMES,
    Problem,
    Resource,
    Tree,
    display_path,
    duplicates,
    find_kustomization,
    identity,
    read_tree,
    str_map,
)

__all__ = [
    "KUSTOMIZATION_NAMES",
    "Problem",
    "Resource",
    "Tree",
    "display_path",
    "duplicates",
    "find_kustomization",
    "identity",
    "is_core",
    "json6902",
    "matches_target",
    "merge",
    "read_tree",
    "str_map",
]
