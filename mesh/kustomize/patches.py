"""Kustomize patches, applied the way kustomize does for the cases manifests use.

Built-in kinds get a strategic merge (some lists merge item by item, keyed as
Kubernetes keys them); custom resources such as Istio's get a JSON merge
(every list replaced whole). JSON6902 patches support add, replace and remove.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesh.kustomize.reader import Resource


def matches_target(res: Resource, target: dict[str, Any]) -> bool:
    checks = {
        "kind": res.kind,
        "name": res.name,
        "namespace": res.namespace,
        "group": res.group,
        "version": res.api_version.rpartition("/")[2],
    }
    for key, actual in checks.items():
        if key in target and str(target[key]) != actual:
            return False
    selector = target.get("labelSelector")
    if isinstance(selector, str) and selector:
        for term in selector.split(","):
            key, _, value = term.partition("=")
            if res.labels.get(key.strip()) != value.strip():
                return False
    return True


# Strategic-merge keys of the core lists a patch is likely to touch; any
# other list is replaced whole (and so is every list of a custom resource).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
}


def merge(base: Any, patch: Any, core: bool, field: str = "") -> Any:
    """Strategic merge, simplified: maps merge, ``null`` deletes, and on core
    kinds the lists above (plus ``ports``, keyed by ``containerPort`` in a
    container and ``port`` in a Service) merge item by item. With ``core=False``
    this is an RFC 7386 JSON merge patch (every list replaced whole), what
    kustomize applies to custom resources."""
    if isinstance(patch, dict):
        out = copy.deepcopy(base) if isinstance(base, dict) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(out.get(key), value, core, key)
        return out
    key = _merge_key(field, base, patch) if core else None
    if key is not None and isinstance(base, list) and isinstance(patch, list):
        out_list = copy.deepcopy(base)
        for item in patch:
            idx = next((i for i, b in enumerate(out_list) if b.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    out_list.pop(idx)
            elif idx is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[idx] = merge(out_list[idx], item, core)
        return out_list
    return copy.deepcopy(patch)


def _merge_key(field: str, base: Any, patch: Any) -> str | None:
    if not (isinstance(base, list) and isinstance(patch, list)):
        return None
    items = base + patch
    if not all(isinstance(i, dict) for i in items):
        return None
    key = MERGE_KEYS.get(field)
    if field == "ports":
        key = "containerPort" if any("containerPort" in i for i in items) else "port"
    if key is None or not all(key in i for i in items):
        return None
    return key


def json6902(doc: dict[str, Any], ops: list[Any]) -> str | None:
    """Apply add/replace/remove operations; return an error message or None."""
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
            return f"unsupported JSON6902 operation {op!r} (use add, replace or remove)"
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op["path"]).split("/")[1:]]
        parent: Any = doc
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            last = parts[-1]
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(index, op.get("value"))
                elif op["op"] == "replace":
                    parent[index] = op.get("value")
                else:
                    parent.pop(index)
            elif op["op"] == "remove":
                del parent[last]
            else:
                if op["op"] == "replace" and last not in parent:
                    return f"path {op['path']} does not exist"
                parent[last] = op.get("value")
        except (KeyError, IndexError, ValueError, TypeError):
            return f"path {op['path']} does not exist"
    return None


def is_core(res: Resource) -> bool:
    """Built-in Kubernetes kinds (strategic merge) versus custom resources (JSON merge)."""
    return "." not in res.group or res.group.endswith(".k8s.io")
