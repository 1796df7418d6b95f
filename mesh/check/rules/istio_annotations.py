"""Istio annotations in the right place (IST0107, IST0108, IST0135).

Most Istio annotations are read from the *pod*: on a Deployment's own
metadata they do nothing, they belong on ``spec.template.metadata``. The
table below lists the known annotations and the kinds that read them, after
istio/api ``annotation/annotations.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator

from mesh.check.findings import Finding, Severity
from mesh.check.index import Index, Workload
from mesh.check.loader import Resource

POD = "Pod"
ANY = "Any"
_POD_ONLY = [
    "inject.istio.io/templates",
    "prometheus.istio.io/merge-metrics",
    "proxy.istio.io/config",
    "proxy.istio.io/overrides",
    "ambient.istio.io/redirection",
    "status.sidecar.istio.io/port",
    *(
        f"readiness.status.sidecar.istio.io/{k}"
        for k in ("initialDelaySeconds", "periodSeconds", "failureThreshold", "applicationPorts")
    ),
    *(
        f"traffic.sidecar.istio.io/{k}"
        for k in (
            "includeOutboundIPRanges",
            "excludeOutboundIPRanges",
            "includeInboundPorts",
            "excludeInboundPorts",
            "includeOutboundPorts",
            "excludeOutboundPorts",
            "kubevirtInterfaces",
            "excludeInterfaces",
        )
    ),
    *(
        f"sidecar.istio.io/{k}"
        for k in (
            "inject",
            "status",
            "rewriteAppHTTPProbers",
            "controlPlaneAuthPolicy",
            "discoveryAddress",
            "proxyImage",
            "proxyImageType",
            "proxyCPU",
            "proxyCPULimit",
            "proxyMemory",
            "proxyMemoryLimit",
            "interceptionMode",
            "bootstrapOverride",
            "statsInclusionPrefixes",
            "statsInclusionSuffixes",
            "statsInclusionRegexps",
            "statsHistogramBuckets",
            "statsFlushInterval",
            "userVolume",
            "userVolumeMount",
            "enableCoreDump",
            "logLevel",
            "componentLogLevel",
            "agentLogLevel",
            "extraStatTags",
            "nativeSidecar",
        )
    ),
]
KNOWN: dict[str, set[str]] = {name: {POD} for name in _POD_ONLY}
KNOWN.update(
    {
        "networking.istio.io/exportTo": {"Service"},
        "networking.istio.io/traffic-distribution": {"Service"},
        "alpha.istio.io/kubernetes-serviceaccounts": {"Service"},
        "alpha.istio.io/canonical-serviceaccounts": {"Service"},
        "galley.istio.io/analyze-suppress": {ANY},
        "istio.io/dry-run": {"AuthorizationPolicy"},
    }
)
# Domains whose every annotation is in the table: anything else there is a typo.
CLOSED_DOMAINS = (
    "sidecar.istio.io",
    "traffic.sidecar.istio.io",
    "status.sidecar.istio.io",
    "readiness.status.sidecar.istio.io",
    "proxy.istio.io",
    "inject.istio.io",
    "prometheus.istio.io",
)
INJECT = "sidecar.istio.io/inject"


def check(index: Index) -> Iterator[Finding]:
    templates = {id(w.resource): w for w in index.workloads if w.resource.kind != POD}
    for res in index.resources:
        yield from _annotations(res, res.annotations, res.kind, "metadata")
        workload = templates.get(id(res))
        if workload is not None:
            yield from _annotations(res, workload.pod_annotations, POD, "spec.template.metadata")
            yield from _inject_label(res, workload)
            pod_labels, pod_notes = workload.labels, workload.pod_annotations
        elif res.kind == POD:
            pod_labels, pod_notes = res.labels, res.annotations
        else:
            continue
        if INJECT in pod_notes and INJECT not in pod_labels:
            yield res.finding(
                "IST0135",
                Severity.INFO,
                f"the {INJECT} annotation is deprecated: make it a pod label",
            )


def _annotations(res: Resource, notes: dict[str, str], kind: str, where: str) -> Iterator[Finding]:
    for key in notes:
        domain = key.partition("/")[0]
        if not domain.endswith("istio.io"):
            continue
        kinds = KNOWN.get(key)
        if kinds is None:
            if domain in CLOSED_DOMAINS:
                yield res.finding(
                    "IST0108", Severity.WARNING, f"{where}: unknown Istio annotation {key!r}"
                )
            continue
        if ANY in kinds or kind in kinds:
            continue
        hint = ""
        if POD in kinds and res.kind != POD:
            hint = "; Istio reads it from the pod: put it on spec.template.metadata.annotations"
        yield res.finding(
            "IST0107",
            Severity.WARNING,
            f"{where}: annotation {key!r} has no effect on a {kind} "
            f"(it belongs on {'/'.join(sorted(kinds))}){hint}",
        )


def _inject_label(res: Resource, workload: Workload) -> Iterator[Finding]:
    if INJECT in res.labels and INJECT not in workload.labels:
        yield res.finding(
            "IST0107",
            Severity.WARNING,
            f"label {INJECT!r} on the {res.kind} itself has no effect: "
            "put it on spec.template.metadata.labels",
        )
