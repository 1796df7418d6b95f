"""Lookups across the loaded objects: hosts to Services, labels to workloads.

Istio resolves a short host name (no dot) in the namespace of the object that
names it, and takes any name with a dot as fully qualified: ``backend-service``
in namespace ``default`` is ``backend-service.default.svc.cluster.local``, but
``backend-service.default`` is looked up as written (and finds nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.check.loader import Resource, str_map

CLUSTER_DOMAIN = "svc.cluster.local"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass
class Workload:
    """The pods a workload object would create, as far as routing cares."""

    resource: Resource
    labels: dict[str, str]
    replicas: int
    pod_spec: dict[str, Any]
    pod_annotations: dict[str, str]

    @property
    def namespace(self) -> str:
        return self.resource.namespace

    @property
    def service_account(self) -> str:
        name = self.pod_spec.get("serviceAccountName") or self.pod_spec.get("serviceAccount")
        return str(name or "default")


def fqdn(host: str, namespace: str) -> str:
    return host if "." in host or host == "*" else f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Label-selector match (``matchLabels`` only; an empty selector matches all)."""
    return all(labels.get(k) == v for k, v in selector.items())


class Index:
    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources
        self.services: dict[str, Resource] = {}
        for res in self.of_kind("Service"):
            self.services[f"{res.name}.{res.namespace}.{CLUSTER_DOMAIN}"] = res
        self.workloads = [w for r in resources if (w := _workload(r)) is not None]
        self.service_accounts = {(r.namespace, r.name) for r in self.of_kind("ServiceAccount")}

    def of_kind(self, kind: str, istio: bool | None = None) -> list[Resource]:
        return [
            r for r in self.resources if r.kind == kind and (istio is None or r.is_istio == istio)
        ]

    def service(self, host: str, namespace: str) -> Resource | None:
        return self.services.get(fqdn(host, namespace))

    def service_selector(self, service: Resource) -> dict[str, str]:
        return str_map(service.spec.get("selector"))

    def pods_of(self, service: Resource, extra: dict[str, str] | None = None) -> list[Workload]:
        """Workloads in the Service's namespace whose pods the Service selects
        (and that also carry ``extra`` labels, e.g. a subset's)."""
        selector = self.service_selector(service)
        if not selector:
            return []
        wanted = {**selector, **(extra or {})}
        return [
            w
            for w in self.workloads
            if w.namespace == service.namespace and selects(wanted, w.labels)
        ]

    def service_entry_hosts(self) -> set[str]:
        hosts: set[str] = set()
        for entry in self.of_kind("ServiceEntry", istio=True):
            hosts_field = entry.spec.get("hosts")
            for host in hosts_field if isinstance(hosts_field, list) else []:
                hosts.add(fqdn(str(host), entry.namespace))
        return hosts

    def destination_rules_for(self, name: str) -> list[Resource]:
        """DestinationRules whose host resolves to the fully qualified ``name``."""
        return [
            dr
            for dr in self.of_kind("DestinationRule", istio=True)
            if fqdn(str(dr.spec.get("host", "")), dr.namespace) == name
        ]

    def subsets_for(self, name: str) -> set[str]:
        return {s for dr in self.destination_rules_for(name) for s in _subset_names(dr)}

    def workloads_matching(self, labels: dict[str, str], namespace: str | None) -> list[Workload]:
        return [
            w
            for w in self.workloads
            if (namespace is None or w.namespace == namespace) and selects(labels, w.labels)
        ]


def _workload(res: Resource) -> Workload | None:
    if res.kind == "Pod":
        return Workload(res, res.labels, 1, res.spec, res.annotations)
    if res.kind not in WORKLOAD_KINDS:
        return None
    template = res.spec.get("template")
    if not isinstance(template, dict):
        return None
    meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    replicas = res.spec.get("replicas", 1)
    return Workload(
        resource=res,
        labels=str_map(meta.get("labels")),
        replicas=replicas if isinstance(replicas, int) else 1,
        pod_spec=spec,
        pod_annotations=str_map(meta.get("annotations")),
    )


def _subset_names(rule: Resource) -> set[str]:
    subsets = rule.spec.get("subsets")
    if not isinstance(subsets, list):
        return set()
    return {str(s.get("name")) for s in subsets if isinstance(s, dict) and s.get("name")}
