"""Istio annotations in the right place (IST0107, IST0108, IST0135), as istio/istio
pkg/config/analysis/analyzers/annotations/annotations.go decides.

An annotation is Istio's when its domain ends in ``istio.io`` (or it is
``kubernetes.io/ingress.class``). Not in Istio's list: IST0108. Deprecated: IST0135 (the
``sidecar.istio.io/inject`` annotation only when the label is not set too). Attached to a
kind its definition does not list: IST0107. The analyzer reads the annotations of
Namespaces, Services, Pods and Deployments; a Deployment's pod template counts as a Pod
here (with files alone there are no Pods; in a cluster its Pods would carry them).
``sidecar.istio.io/status``, ``gateway.istio.io/controller-version`` and ``istio.io/rev``
are written by Istio itself and never reported (analyzers/maturity AlwaysIgnoredAnnotations).
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload
from mesh.check.loader import Resource

POD = "Pod"
ANY = "Any"
ANALYZED_KINDS = ("Namespace", "Service", "Pod", "Deployment")
# name -> (deprecated, the kinds it attaches to): istio/api annotation/annotations.yaml
# (commit b8f8791d9), the list annotation.AllResourceAnnotations() gives the analyzer.
ANNOTATIONS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "prometheus.istio.io/merge-metrics": (False, ("Pod",)),
    "alpha.istio.io/kubernetes-serviceaccounts": (True, ("Service",)),
    "alpha.istio.io/canonical-serviceaccounts": (True, ("Service",)),
    "networking.istio.io/exportTo": (False, ("Service",)),
    "sidecar.istio.io/inject": (True, ("Pod",)),
    "sidecar.istio.io/status": (False, ("Pod",)),
    "sidecar.istio.io/rewriteAppHTTPProbers": (False, ("Pod",)),
    "sidecar.istio.io/discoveryAddress": (True, ("Pod",)),
    "sidecar.istio.io/proxyImage": (False, ("Pod",)),
    "sidecar.istio.io/proxyImageType": (False, ("Pod",)),
    "sidecar.istio.io/proxyCPU": (False, ("Pod",)),
    "sidecar.istio.io/proxyCPULimit": (False, ("Pod",)),
    "sidecar.istio.io/proxyMemory": (False, ("Pod",)),
    "sidecar.istio.io/proxyMemoryLimit": (False, ("Pod",)),
    "sidecar.istio.io/interceptionMode": (False, ("Pod",)),
    "sidecar.istio.io/bootstrapOverride": (False, ("Pod",)),
    "sidecar.istio.io/statsInclusionPrefixes": (True, ("Pod",)),
    "sidecar.istio.io/statsInclusionSuffixes": (True, ("Pod",)),
    "sidecar.istio.io/statsInclusionRegexps": (True, ("Pod",)),
    "sidecar.istio.io/statsHistogramBuckets": (False, ("Pod",)),
    "sidecar.istio.io/statsFlushInterval": (False, ("Pod",)),
    "sidecar.istio.io/statsEvictionInterval": (False, ("Pod",)),
    "sidecar.istio.io/statsHistogramBins": (False, ("Pod",)),
    "sidecar.istio.io/userVolume": (False, ("Pod",)),
    "sidecar.istio.io/userVolumeMount": (False, ("Pod",)),
    "status.sidecar.istio.io/port": (False, ("Pod",)),
    "sidecar.istio.io/logLevel": (False, ("Pod",)),
    "sidecar.istio.io/componentLogLevel": (False, ("Pod",)),
    "sidecar.istio.io/agentLogLevel": (False, ("Pod",)),
    "sidecar.istio.io/nativeSidecar": (False, ("Pod",)),
    "readiness.status.sidecar.istio.io/initialDelaySeconds": (False, ("Pod",)),
    "readiness.status.sidecar.istio.io/periodSeconds": (False, ("Pod",)),
    "readiness.status.sidecar.istio.io/failureThreshold": (False, ("Pod",)),
    "readiness.status.sidecar.istio.io/applicationPorts": (False, ("Pod",)),
    "traffic.istio.io/nodeSelector": (False, ("Service",)),
    "traffic.sidecar.istio.io/includeOutboundIPRanges": (False, ("Pod",)),
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": (False, ("Pod",)),
    "traffic.sidecar.istio.io/includeInboundPorts": (False, ("Pod",)),
    "traffic.sidecar.istio.io/excludeInboundPorts": (False, ("Pod",)),
    "traffic.sidecar.istio.io/excludeInterfaces": (False, ("Pod",)),
    "traffic.sidecar.istio.io/includeOutboundPorts": (False, ("Pod",)),
    "traffic.sidecar.istio.io/excludeOutboundPorts": (False, ("Pod",)),
    "traffic.sidecar.istio.io/kubevirtInterfaces": (True, ("Pod",)),
    "kubernetes.io/ingress.class": (False, ("Ingress",)),
    "galley.istio.io/analyze-suppress": (False, ("Any",)),
    "proxy.istio.io/config": (False, ("Pod",)),
    "istio.io/dry-run": (False, ("AuthorizationPolicy",)),
    "istio.io/rev": (False, ("Pod",)),
    "proxy.istio.io/overrides": (False, ("Pod",)),
    "inject.istio.io/templates": (False, ("Pod",)),
    "sidecar.istio.io/extraStatTags": (True, ("Pod",)),
    "istio.io/autoRegistrationGroup": (False, ("WorkloadEntry",)),
    "istio.io/workloadController": (False, ("WorkloadEntry",)),
    "istio.io/connectedAt": (False, ("WorkloadEntry",)),
    "istio.io/disconnectedAt": (False, ("WorkloadEntry",)),
    "topology.istio.io/controlPlaneClusters": (False, ("Namespace",)),
    "gateway.istio.io/controller-version": (False, ("Any",)),
    "ambient.istio.io/redirection": (False, ("Pod",)),
    "ambient.istio.io/waypoint-inbound-binding": (
        False,
        (
            "GatewayClass",
            "Gateway",
        ),
    ),
    "gateway.istio.io/service-account": (False, ("Gateway",)),
    "gateway.istio.io/name-override": (False, ("Gateway",)),
    "networking.istio.io/service-type": (False, ("Gateway",)),
    "networking.istio.io/traffic-distribution": (
        False,
        (
            "Namespace",
            "Service",
            "ServiceEntry",
        ),
    ),
    "istio.io/use-waypoint-canary-weight": (
        False,
        (
            "Service",
            "ServiceEntry",
            "Namespace",
        ),
    ),
    "ambient.istio.io/bypass-inbound-capture": (False, ("Pod",)),
    "istio.io/reroute-virtual-interfaces": (False, ("Pod",)),
    "ambient.istio.io/dns-capture": (False, ("Pod",)),
    "sidecar.istio.io/statsCompression": (True, ("Pod",)),
}
ALWAYS_IGNORED = {"sidecar.istio.io/status", "gateway.istio.io/controller-version", "istio.io/rev"}
INJECT = "sidecar.istio.io/inject"
DEPRECATION_NOTES = {INJECT: ' in favor of the "sidecar.istio.io/inject" label'}


def check(index: Index) -> Iterator[Finding]:
    templates = {id(w.resource): w for w in index.workloads if w.resource.kind != POD}
    for res in index.resources:
        if res.kind in ANALYZED_KINDS:
            yield from _annotations(res, res.annotations, res.labels, res.kind, "metadata")
        workload = templates.get(id(res))
        if workload is not None:
            yield from _annotations(
                res, workload.pod_annotations, workload.labels, POD, "spec.template.metadata"
            )
            yield from _inject_label(res, workload)


def _istio_annotation(key: str) -> bool:
    return key == "kubernetes.io/ingress.class" or key.partition("/")[0].endswith("istio.io")


def _annotations(
    res: Resource, notes: dict[str, str], labels: dict[str, str], kind: str, where: str
) -> Iterator[Finding]:
    for key in notes:
        if not _istio_annotation(key) or key in ALWAYS_IGNORED:
            continue
        known = ANNOTATIONS.get(key)
        if known is None:
            yield res.finding("IST0108", Severity.WARNING, f"{where}: unknown annotation {key!r}")
            continue
        deprecated, kinds = known
        if deprecated and not (key == INJECT and INJECT in labels):
            note = DEPRECATION_NOTES.get(key, "")
            yield res.finding(
                "IST0135",
                Severity.INFO,
                f"{where}: annotation {key!r} has been deprecated{note} and may not work in "
                "future Istio versions",
            )
        if ANY in kinds or kind in kinds:
            continue
        hint = ""
        if POD in kinds and res.kind != POD:
            hint = "; Istio reads it from the pod: put it on spec.template.metadata.annotations"
        yield res.finding(
            "IST0107",
            Severity.WARNING,
            f"{where}: misplaced annotation {key!r} can only be applied to "
            f"{', '.join(kinds)}{hint}",
        )


def _inject_label(res: Resource, workload: Workload) -> Iterator[Finding]:
    if INJECT in res.labels and INJECT not in workload.labels:
        yield res.finding(
            "IST0107",
            Severity.WARNING,
            f"label {INJECT!r} on the {res.kind} itself has no effect: "
            "put it on spec.template.metadata.labels",
        )
