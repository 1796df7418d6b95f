"""Sidecar injection: the namespaces of the set (IST0102, IST0123) and which workloads
get a sidecar (``in_mesh``, which the deployment rules ask).

Both follow istioctl's own code: ``pkg/config/analysis/analyzers/injection/injection.go``
for the Namespace objects and ``analyzers/util/in_mesh.go`` ``inMesh`` for a workload.

One difference, on purpose: a workload whose namespace has no Namespace object in the set
counts as injected. ``inMesh`` reads the namespace's labels from the cluster, and this
project's namespace is labelled ``istio-injection=enabled`` where it runs
(scripts/minikube.sh); offline, with no Namespace object, istioctl would take every such
workload as outside the mesh and skip the rules that need a sidecar.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload
from mesh.check.loader import Resource
from mesh.check.rules._access import dicts

INJECTION_LABEL = "istio-injection"  # util.InjectionLabelName
INJECTION_ENABLED = "enabled"
REVISION_LABEL = "istio.io/rev"  # label.IoIstioRev
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"  # label.IoIstioDataplaneMode
AMBIENT = "ambient"
SIDECAR_INJECT = "sidecar.istio.io/inject"  # a pod's label, else its annotation
PROXY_CONTAINER = "istio-proxy"  # util.IstioProxyName
ISTIO_SYSTEM = "istio-system"


def check(index: Index) -> Iterator[Finding]:
    for namespace in index.of_kind("Namespace"):
        if namespace.name != ISTIO_SYSTEM:
            yield from _namespace(namespace)


def _namespace(ns: Resource) -> Iterator[Finding]:
    labels = ns.labels
    injection = labels.get(INJECTION_LABEL)
    istio_labels = [f"{INJECTION_LABEL}={injection}"] if injection is not None else []
    for key in (REVISION_LABEL, DATAPLANE_MODE_LABEL):
        if key in labels and (injection is None or injection == INJECTION_ENABLED):
            istio_labels.append(f"{key}={labels[key]}")
    if len(istio_labels) > 1:
        yield ns.finding(
            "IST0123",
            Severity.WARNING,
            f"more than one kind of injection label ({', '.join(istio_labels)}): which one "
            "wins is undefined; keep one",
        )
    if labels.get(DATAPLANE_MODE_LABEL) == AMBIENT:
        return
    if not injection and REVISION_LABEL not in labels:
        yield ns.finding(
            "IST0102",
            Severity.INFO,
            f"namespace {ns.name} is not enabled for Istio injection: its pods get no sidecar, "
            "so no route, mTLS or policy of the mesh applies to them; add the label "
            f"{INJECTION_LABEL}: {INJECTION_ENABLED} (or {INJECTION_LABEL}: disabled to say "
            "it needs none)",
        )


def namespaces(index: Index) -> dict[str, Resource]:
    """The Namespace objects of the set, by name."""
    return {ns.name: ns for ns in index.of_kind("Namespace")}


def in_mesh(workload: Workload, namespace_objects: dict[str, Resource]) -> bool:
    """Whether WORKLOAD's pods get a sidecar, as ``inMesh`` decides: an ``istio-proxy``
    container; else the pod's ``sidecar.istio.io/inject`` label, then annotation; else its
    namespace's ``istio-injection`` label; a namespace not in the set counts as injected
    (see the module doc)."""
    spec = workload.pod_spec
    containers = dicts(spec.get("containers"))
    if workload.resource.kind == "Pod":
        containers += dicts(spec.get("initContainers"))
    if any(c.get("name") == PROXY_CONTAINER and c.get("image") for c in containers):
        return True
    for source in (workload.labels, workload.pod_annotations):
        if SIDECAR_INJECT in source:
            return source[SIDECAR_INJECT] == "true"
    namespace = namespace_objects.get(workload.namespace)
    if namespace is None:
        return True
    return namespace.labels.get(INJECTION_LABEL) == INJECTION_ENABLED
