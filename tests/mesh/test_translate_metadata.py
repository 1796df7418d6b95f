"""The `istio` filter metadata istiod writes on clusters and routes (which Service, which
DestinationRule or VirtualService), from which `istioctl proxy-config` and `mesh
proxy-config` name a cluster's DESTINATION RULE and a route's VIRTUAL SERVICE
(mesh/translate/metadata.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh.manifests import load
from mesh.translate.metadata import config_path, render_config
from tests.mesh.support import K8S, VARIANTS, local_config, overlay

API = "/apis/networking.istio.io/v1/namespaces"


def istio(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("metadata", {}).get("filter_metadata", {}).get("istio", {})


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for flt in chain["filters"]:
                table = flt["typed_config"].get("route_config") or {}
                for host in table.get("virtual_hosts", []):
                    out.extend(host["routes"])
    return out


def test_each_cluster_names_its_service_rule_and_subset() -> None:
    manifests = load(K8S)
    rules = {dr.spec["host"].split(".")[0]: dr for dr in manifests.destination_rules}
    clusters = local_config(manifests)["static_resources"]["clusters"]
    outbound = [c for c in clusters if c["name"].startswith("outbound|")]
    assert outbound
    for c in outbound:
        _, port, subset, fqdn = c["name"].split("|")
        service = fqdn.split(".")[0]
        meta = istio(c)
        assert meta["services"] == [{"host": fqdn, "name": service, "namespace": "default"}]
        dr = rules[service]
        assert meta["config"] == f"{API}/{dr.namespace}/destination-rule/{dr.name}"
        assert meta.get("subset", "") == subset


def test_a_service_without_destination_rule_has_no_config(tmp_path: Path) -> None:
    tree = overlay(tmp_path / "t")
    kustomization = yaml.safe_load((tree / "kustomization.yaml").read_text())
    kustomization["patches"] = [
        {"patch": "$patch: delete\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                  "metadata:\n  name: frontend\n  namespace: default\n"}
    ]  # fmt: skip
    (tree / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    clusters = local_config(tree)["static_resources"]["clusters"]
    frontend = [
        c for c in clusters if c["name"].endswith("|frontend-service.default.svc.cluster.local")
    ]
    assert [istio(c).keys() for c in frontend] == [{"services"}]


def test_each_route_names_the_virtual_service_that_wrote_it() -> None:
    manifests = load(VARIANTS / "weighted")
    by_route = {
        rule.get("name"): vs.name
        for vs in manifests.virtual_services
        for rule in vs.spec.get("http", [])
    }
    seen = set()
    for route in routes(local_config(manifests)):
        if route.get("name") in by_route:
            name = by_route[route["name"]]
            assert istio(route) == {"config": f"{API}/default/virtual-service/{name}"}
            seen.add(name)
    assert seen == {vs.name for vs in manifests.virtual_services}


def test_proxy_config_reads_back_the_config_path_the_translation_writes() -> None:
    """`config_path` and istioctl's renderConfig are each other's reverse, for every
    VirtualService and DestinationRule of k8s/ (mesh proxy-config's columns)."""
    manifests = load(K8S)
    objects = [*manifests.virtual_services, *manifests.destination_rules]
    assert len(objects) >= 3
    for obj in objects:
        assert render_config(config_path(obj)) == f"{obj.name}.{obj.namespace}"
    assert render_config("/apis/other.io/v1/namespaces/default/thing/x") == "<unknown>"
