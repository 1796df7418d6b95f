"""PeerAuthentication -> the mTLS mode of each workload's inbound side.

Istio's precedence: a policy with a `selector` matching the workload (in its namespace)
wins over the namespace-wide one, which wins over a policy in the root namespace
`istio-system`; `UNSET` inherits from the next level; nothing at all means PERMISSIVE.
"""

from __future__ import annotations

from typing import Literal

from mesh.manifests import Deployment, Manifests, Obj
from mesh.translate.fields import spec

Mode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
ROOT_NAMESPACE = "istio-system"
KIND = "PeerAuthentication"


def _selector(obj: Obj) -> dict[str, str] | None:
    root = spec(obj).only("selector", "mtls", "portLevelMtls")
    if root.has("portLevelMtls"):
        raise root.at("portLevelMtls").error("is not supported by the local mesh")
    if not root.has("selector"):
        return None
    sel = root.at("selector").only("matchLabels")
    labels = sel.at("matchLabels").value or {}
    if not isinstance(labels, dict):
        raise sel.at("matchLabels").error("must be a mapping")
    return {str(k): str(v) for k, v in labels.items()}


def _mode(obj: Obj) -> str:
    root = spec(obj)
    if not root.has("mtls"):
        return "UNSET"
    mtls = root.at("mtls").only("mode")
    mode = mtls.at("mode").str() if mtls.has("mode") else "UNSET"
    if mode not in MODES:
        raise mtls.at("mode").error(f"must be one of {', '.join(MODES)}")
    return mode


def check_peer_authentications(manifests: Manifests) -> None:
    """Refuse unsupported fields and bad modes up front (naming file and field)."""
    for obj in manifests.other:
        if obj.kind == KIND:
            _selector(obj)
            _mode(obj)


def mtls_mode(manifests: Manifests, deployment: Deployment) -> Mode:
    """The inbound mTLS mode of DEPLOYMENT's pods."""
    workload: list[str] = []
    namespace: list[str] = []
    mesh: list[str] = []
    for obj in manifests.other:
        if obj.kind != KIND:
            continue
        selector = _selector(obj)
        if obj.namespace == deployment.namespace and selector is not None:
            if all(deployment.template_labels.get(k) == v for k, v in selector.items()):
                workload.append(_mode(obj))
        elif obj.namespace == deployment.namespace:
            namespace.append(_mode(obj))
        elif obj.namespace == ROOT_NAMESPACE and selector is None:
            mesh.append(_mode(obj))
    for level in (workload, namespace, mesh):
        for mode in level:
            if mode != "UNSET":
                return mode  # type: ignore[return-value]
    return "PERMISSIVE"
