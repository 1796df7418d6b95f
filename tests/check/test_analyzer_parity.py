"""`mesh check` decides as `istioctl analyze`'s own analyzers do (issue 14 item 11).

Each test adds objects to the check fixtures' base tree and names the istio/istio
analyzer (pkg/config/analysis/analyzers/...) whose decision it follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.check import Finding, check_tree
from mesh.check.rules.routing import hosts_overlap
from tests.mesh.support import overlay

BASE = Path(__file__).parent / "fixtures" / "base"


def findings(tmp_path: Path, *extra: dict[str, Any]) -> list[Finding]:
    return check_tree(overlay(tmp_path / "t", extra=list(extra), base=BASE))


def codes(found: list[Finding], code: str) -> list[str]:
    return sorted(f"{f.namespace}/{f.kind}/{f.name}" for f in found if f.code == code)


def gateway(name: str, selector: dict[str, str], hosts: list[str], port: int = 80) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "servers": [
                {"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": hosts}
            ],
        },
    }


def virtual_service(name: str, namespace: str = "default", **spec: Any) -> dict:
    spec.setdefault("hosts", ["backend-service"])
    spec.setdefault("http", [{"route": [{"destination": {"host": "backend-service"}}]}])
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def deployment(name: str, labels: dict[str, str], namespace: str = "default") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "version": "v1"}},
                "spec": {
                    "enableServiceLinks": False,
                    "containers": [{"name": "c", "image": "example/gw:1"}],
                },
            },
        },
    }


# --- IST0145 (gateway/conflictinggateway.go) --------------------------------------------


def test_a_gateway_conflict_is_reported_on_both_gateways(tmp_path: Path) -> None:
    found = findings(tmp_path, gateway("admin", {"istio": "ingressgateway"}, ["*"]))
    assert codes(found, "IST0145") == ["default/Gateway/admin", "default/Gateway/taskmesh-gateway"]


def test_hosts_that_differ_as_text_are_no_gateway_conflict(tmp_path: Path) -> None:
    found = findings(tmp_path, gateway("admin", {"istio": "ingressgateway"}, ["admin.example.com"]))
    assert codes(found, "IST0145") == []


def test_gateway_selectors_are_compared_by_the_pods_they_select(tmp_path: Path) -> None:
    pods = deployment("edge", {"app": "edge", "tier": "front"})
    narrow = gateway("a", {"app": "edge"}, ["shop.example.com"], port=8081)
    wide = gateway("b", {"app": "edge", "tier": "front"}, ["shop.example.com"], port=8081)
    assert codes(findings(tmp_path / "1", pods, narrow, wide), "IST0145") == [
        "default/Gateway/a",
        "default/Gateway/b",
    ]
    other = gateway("b", {"app": "edge", "tier": "back"}, ["shop.example.com"], port=8081)
    assert codes(findings(tmp_path / "2", pods, narrow, other), "IST0145") == []


# --- IST0109 (virtualservice/conflictingmeshgatewayhosts.go) ---------------------------


def test_a_mesh_host_conflict_is_reported_on_every_virtual_service(tmp_path: Path) -> None:
    found = findings(tmp_path, virtual_service("backend-beta"))
    assert codes(found, "IST0109") == [
        "default/VirtualService/backend",
        "default/VirtualService/backend-beta",
    ]


def test_export_to_separates_mesh_hosts(tmp_path: Path) -> None:
    scoped = virtual_service("backend-beta", exportTo=["other"])
    base_scoped = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "backend"},
        "spec": {"exportTo": ["."]},
    }
    found = check_tree(overlay(tmp_path / "t", patches=[base_scoped], extra=[scoped], base=BASE))
    assert codes(found, "IST0109") == []


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("*.a.b", "*.b", True),
        ("*.b", "*.a.b", True),
        ("*.foo.com", "foo.com", False),
        ("*", "*.com", True),
        ("a.com", "b.com", False),
        ("*example.com", "shop.example.com", True),
    ],
)
def test_host_overlap_is_istios_name_matches(a: str, b: str, overlap: bool) -> None:
    assert hosts_overlap(a, b) is overlap


# --- IST0132 / IST0101 (virtualservice/gateways.go) -------------------------------------


@pytest.mark.parametrize(
    ("host", "served"),
    [("./shop.example.com", True), ("other/shop.example.com", False), ("*/shop.example.com", True)],
)
def test_server_host_namespaces_decide_what_a_virtual_service_may_bind(
    tmp_path: Path, host: str, served: bool
) -> None:
    gw = gateway("taskmesh-gateway", {"istio": "ingressgateway"}, [host])
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "frontend"},
        "spec": {"hosts": ["shop.example.com"]},
    }
    found = check_tree(overlay(tmp_path / "t", patches=[gw, vs], base=BASE))
    assert (codes(found, "IST0132") == []) is served


def test_a_gateway_api_gateway_is_a_virtual_service_gateway(tmp_path: Path) -> None:
    k8s_gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "shop.example.com"}
            ],
        },
    }
    bound = virtual_service("shop", hosts=["shop.example.com"], gateways=["edge"])
    bound["spec"]["http"] = [{"route": [{"destination": {"host": "frontend-service"}}]}]
    found = findings(tmp_path / "1", k8s_gateway, bound)
    assert [f.line() for f in found if f.kind == "VirtualService" and f.name == "shop"] == []
    bound["spec"]["hosts"] = ["other.example.com"]
    found = findings(tmp_path / "2", k8s_gateway, bound)
    assert codes(found, "IST0132") == ["default/VirtualService/shop"]


# --- IST0157, IST0127 (telemetry/providers.go, authz/authorizationpolicies.go) ----------


def test_an_access_log_entry_without_providers_logs_nothing(tmp_path: Path) -> None:
    telemetry = {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "access-logs"},
        "spec": {"accessLogging": [{"match": {"mode": "CLIENT"}}, {"disabled": True}]},
    }
    found = check_tree(overlay(tmp_path / "t", patches=[telemetry], base=BASE))
    assert [f.message[:16] for f in found if f.code == "IST0157"] == ["accessLogging[0]"]


def test_authorization_policy_workloads_as_istio_finds_them(tmp_path: Path) -> None:
    def policy(name: str, namespace: str, selector: dict[str, str] | None) -> dict:
        spec: dict[str, Any] = {"action": "ALLOW"}
        if selector is not None:
            spec["selector"] = {"matchLabels": selector}
        return {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }

    found = findings(
        tmp_path,
        policy("empty-namespace", "nobody-here", None),  # namespace-wide, no pods there
        policy("mesh-wide", "istio-system", {"app": "backend"}),  # root: looked up everywhere
        policy("mesh-wide-nothing", "istio-system", {"app": "nothing"}),
    )
    assert codes(found, "IST0127") == [
        "istio-system/AuthorizationPolicy/mesh-wide-nothing",
        "nobody-here/AuthorizationPolicy/empty-namespace",
    ]


# --- IST0118 / IST0150 (service/portname.go) ------------------------------------------


def service(name: str, namespace: str = "default", labels: dict | None = None, **spec: Any) -> dict:
    spec.setdefault("ports", [{"name": "web", "port": 8080}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }


def test_port_names_of_istio_and_system_services_are_not_checked(tmp_path: Path) -> None:
    found = findings(
        tmp_path,
        service("plain"),
        service("istiod", labels={"istio": "pilot"}),
        service("gw", labels={"gateway.istio.io/managed": "istio.io-gateway-controller"}),
        service("dns", namespace="kube-system"),
        service("ext", type="ExternalName", externalName="x.example.com"),
    )
    assert codes(found, "IST0118") == ["default/Service/plain"]
    assert codes(found, "IST0150") == ["default/Service/ext"]


# --- IST0107 / IST0108 / IST0135 (annotations/annotations.go) -----------------------------


def test_annotations_in_every_istio_domain_and_ingress_class(tmp_path: Path) -> None:
    svc = service("web", labels={})
    svc["spec"]["ports"] = [{"name": "http", "port": 8080}]
    svc["metadata"]["annotations"] = {
        "networking.istio.io/exportToo": ".",  # a typo in a domain with few annotations
        "kubernetes.io/ingress.class": "istio",  # an Ingress annotation on a Service
        "example.com/anything": "x",  # not Istio's
    }
    pods = deployment("stats", {"app": "stats"})
    pods["spec"]["template"]["metadata"]["annotations"] = {
        "sidecar.istio.io/statsInclusionPrefixes": "cluster",  # deprecated
        "sidecar.istio.io/status": "{}",  # written by Istio: never reported
    }
    found = findings(tmp_path, svc, pods)
    mine = sorted(
        (f.code, f.name, f.message.split("'")[1])
        for f in found
        if f.code in ("IST0107", "IST0108", "IST0135")
    )
    assert mine == [
        ("IST0107", "web", "kubernetes.io/ingress.class"),
        ("IST0108", "web", "networking.istio.io/exportToo"),
        ("IST0135", "stats", "sidecar.istio.io/statsInclusionPrefixes"),
    ]


# --- destinations (virtualservice/destinationhosts.go, util/service_lookup.go) -----------


def _external_vs(host: str, **extra: Any) -> dict:
    vs = virtual_service("external", hosts=[host], **extra)
    vs["spec"]["http"] = [{"route": [{"destination": {"host": host}}]}]
    return vs


def test_a_wildcard_service_entry_host_is_a_destination(tmp_path: Path) -> None:
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "example"},
        "spec": {"hosts": ["*.example.com"], "ports": [{"number": 443, "name": "https"}]},
    }
    found = findings(tmp_path / "1", entry, _external_vs("api.example.com"))
    assert [f.line() for f in found if f.name == "external" and f.code == "IST0101"] == []
    found = findings(tmp_path / "2", entry, _external_vs("api.example.org"))
    assert codes(found, "IST0101") == ["default/VirtualService/external"]


def test_export_to_hides_services_and_service_entries(tmp_path: Path) -> None:
    hidden = service("private", namespace="other")
    hidden["metadata"]["annotations"] = {"networking.istio.io/exportTo": "."}
    hidden["spec"]["ports"] = [{"name": "http", "port": 8080}]
    local_entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "local", "namespace": "other"},
        "spec": {
            "hosts": ["local.example.com"],
            "exportTo": ["."],
            "ports": [{"number": 80, "name": "http"}],
        },
    }
    vs_hidden = _external_vs("private.other.svc.cluster.local")
    vs_local = _external_vs("local.example.com")
    vs_local["metadata"]["name"] = "to-local"
    found = findings(tmp_path, hidden, local_entry, vs_hidden, vs_local)
    assert codes(found, "IST0101") == [
        "default/VirtualService/external",
        "default/VirtualService/to-local",
    ]


# --- IST0173 / IST0174 (destinationrule/subset.go) ------------------------------------


def test_subset_labels_may_come_from_the_pods_node(tmp_path: Path) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
    }
    pinned = deployment("zonal", {"app": "zonal"})
    pinned["spec"]["template"]["spec"]["nodeName"] = "node-a"
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "zonal"},
        "spec": {
            "host": "backend-service",
            "subsets": [
                {"name": "a", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
                {"name": "b", "labels": {"topology.kubernetes.io/zone": "zone-b"}},
            ],
        },
    }
    found = findings(tmp_path, node, pinned, rule)
    assert [f.message.split("'")[1] for f in found if f.code == "IST0173"] == ["b"]


def test_a_destination_rule_host_is_looked_up_as_destinations_are(tmp_path: Path) -> None:
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "wide"},
        "spec": {"host": "*.svc.cluster.local"},
    }
    assert codes(findings(tmp_path, rule), "IST0174") == ["default/DestinationRule/wide"]
