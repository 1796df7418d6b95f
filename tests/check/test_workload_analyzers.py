"""Sidecar injection, Services per Deployment, the proxy's UID, DestinationRule TLS,
gateway ports and policies on Gateway API gateways (IST0102, IST0116, IST0123, IST0128,
IST0129, IST0137, IST0144, IST0162, IST0166) decide as istioctl's analyzers do; each
test names the Go file (istio/istio pkg/config/analysis/analyzers/...) it follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesh.check import Finding, check_tree
from tests.mesh.support import overlay

BASE = Path(__file__).parent / "fixtures" / "base"


def findings(tmp_path: Path, *extra: dict[str, Any], patches: list[dict[str, Any]] | None = None
             ) -> list[Finding]:  # fmt: skip
    return check_tree(overlay(tmp_path / "t", patches=patches, extra=list(extra), base=BASE))


def on(found: list[Finding], code: str) -> list[str]:
    return sorted(f"{f.kind}/{f.name}" for f in found if f.code == code)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def service(name: str, *ports: dict[str, Any], selector: dict[str, str] | None = None
            ) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector or {"app": "backend"}, "ports": list(ports)},
    }


def pod_template(deployment: str, **template: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment},
        "spec": {"template": template},
    }


CONFLICT = service("backend-admin", {"name": "http-admin", "port": 8080, "targetPort": "http"})


# injection/injection.go


def test_a_namespace_labelled_disabled_or_by_revision_is_not_reported(tmp_path: Path) -> None:
    found = findings(
        tmp_path,
        namespace("default", **{"istio-injection": "disabled"}),
        namespace("shop", **{"istio.io/rev": "canary"}),
        namespace("mesh-ambient", **{"istio.io/dataplane-mode": "ambient"}),
        namespace("istio-system"),
        namespace("plain"),
    )
    assert on(found, "IST0102") == ["Namespace/plain"]
    assert on(found, "IST0123") == []


def test_a_revision_label_beside_injection_disabled_is_one_label(tmp_path: Path) -> None:
    """The revision and dataplane-mode labels count only when istio-injection is absent
    or enabled."""
    found = findings(
        tmp_path,
        namespace("default", **{"istio-injection": "disabled", "istio.io/rev": "canary"}),
        namespace("shop", **{"istio.io/rev": "canary", "istio.io/dataplane-mode": "ambient"}),
    )
    assert on(found, "IST0123") == ["Namespace/shop"]


# util/in_mesh.go inMesh, through deployment/services.go


def test_a_deployment_outside_the_mesh_is_not_checked_for_its_services(tmp_path: Path) -> None:
    assert on(findings(tmp_path / "in", CONFLICT), "IST0137") == [
        "Deployment/backend-v1",
        "Deployment/backend-v2",
    ]
    off = pod_template("backend-v1", metadata={"labels": {"sidecar.istio.io/inject": "false"}})
    found = findings(tmp_path / "label", CONFLICT, patches=[off])
    assert on(found, "IST0137") == ["Deployment/backend-v2"]
    disabled = namespace("default", **{"istio-injection": "disabled"})
    assert on(findings(tmp_path / "ns", CONFLICT, disabled), "IST0137") == []


def test_a_pod_label_wins_over_the_namespace_label(tmp_path: Path) -> None:
    """The frontend's pods say sidecar.istio.io/inject: "true" (fixtures/base); in a
    namespace without injection, only they are in the mesh."""
    frontend = service(
        "frontend-admin",
        {"name": "http-admin", "port": 9000, "targetPort": "http"},
        selector={"app": "frontend"},
    )
    found = findings(tmp_path, CONFLICT, frontend, namespace("default"))
    assert on(found, "IST0137") == ["Deployment/frontend"]


def test_a_waypoint_deployment_is_not_checked(tmp_path: Path) -> None:
    waypoint = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "backend-v1",
            "labels": {"gateway.istio.io/managed": "istio.io-mesh-controller"},
        },
    }
    found = findings(tmp_path, CONFLICT, patches=[waypoint])
    assert on(found, "IST0137") == ["Deployment/backend-v2"]


# deployment/services.go


def test_a_missing_target_port_is_the_port(tmp_path: Path) -> None:
    same = service("backend-metrics", {"name": "http-metrics", "port": 5000})
    other = service("backend-raw", {"name": "http-raw", "port": 7000, "targetPort": 5000})
    assert on(findings(tmp_path / "same", same), "IST0137") == []
    found = findings(tmp_path / "other", same, other)
    assert on(found, "IST0137") == ["Deployment/backend-v1", "Deployment/backend-v2"]
    (message,) = {f.message for f in found if f.code == "IST0137"}
    assert "targetPort 5000" in message and "(5000, 7000)" in message


def test_services_of_another_namespace_or_without_selector_are_not_associated(
    tmp_path: Path,
) -> None:
    elsewhere = {**CONFLICT, "metadata": {"name": "backend-admin", "namespace": "shop"}}
    headless = service("backend-headless", {"name": "http", "port": 8080, "targetPort": "http"})
    headless["spec"]["selector"] = {}
    found = findings(tmp_path, elsewhere, headless)
    assert on(found, "IST0137") == []
    assert on(found, "IST0116") == []


def test_one_port_with_the_same_protocol_twice_is_fine(tmp_path: Path) -> None:
    tcp = service("backend-tcp", {"name": "http-2", "port": 5000, "protocol": "TCP"})
    udp = service("backend-udp", {"name": "udp", "port": 5000, "protocol": "UDP"})
    assert on(findings(tmp_path / "tcp", tcp), "IST0116") == []
    found = findings(tmp_path / "udp", udp)
    assert on(found, "IST0116") == ["Deployment/backend-v1", "Deployment/backend-v2"]


# deployment/pod.go


def test_uid_1337_is_reported_for_the_pod_and_each_container(tmp_path: Path) -> None:
    spec = {
        "securityContext": {"runAsUser": 1337},
        "containers": [{"name": "frontend", "securityContext": {"runAsUser": 1337}}],
    }
    found = findings(tmp_path, patches=[pod_template("frontend", spec=spec)])
    where = sorted(f.message.split(":")[0] for f in found if f.code == "IST0144")
    assert where == [
        "spec.template.spec.containers[0].securityContext.runAsUser",
        "spec.template.spec.securityContext.runAsUser",
    ]


def test_uid_1337_in_istios_own_or_the_proxy_container_is_fine(tmp_path: Path) -> None:
    proxy = {
        "name": "istio-proxy",
        "image": "istio/proxyv2",
        "securityContext": {"runAsUser": 1337},
    }
    sidecar = pod_template("frontend", spec={"containers": [proxy]})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "labels": {"app": "debug", "version": "v1"}},
        "spec": {"containers": [{"name": "sh", "image": "busybox"}]},
    }
    own = {**pod, "metadata": {"name": "istiod-debug", "labels": {"istio": "pilot"}}}
    pod["spec"] = {**pod["spec"], "securityContext": {"runAsUser": 1337}}
    own["spec"] = pod["spec"]
    found = findings(tmp_path, pod, own, patches=[sidecar])
    assert on(found, "IST0144") == ["Pod/debug"]


# destinationrule/ca-certificates.go


def dr_tls(tls: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "backend"},
        "spec": {"trafficPolicy": {"tls": tls}, **spec},
    }


def test_a_credential_name_verifies_only_with_a_workload_selector(tmp_path: Path) -> None:
    by_secret = {"mode": "SIMPLE", "credentialName": "backend-ca"}
    found = findings(tmp_path / "no", patches=[dr_tls(by_secret)])
    assert on(found, "IST0128") == ["DestinationRule/backend"]
    selector = {"matchLabels": {"app": "frontend"}}
    found = findings(tmp_path / "yes", patches=[dr_tls(by_secret, workloadSelector=selector)])
    assert on(found, "IST0128") == []


def test_istio_mutual_and_disable_need_no_ca(tmp_path: Path) -> None:
    for mode in ("ISTIO_MUTUAL", "DISABLE"):
        found = findings(tmp_path / mode, patches=[dr_tls({"mode": mode})])
        assert on(found, "IST0128") == [], mode


# k8sgateway/workloadselector.go


def edge(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "default"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            **spec,
        },
    }


def policy(kind: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    group = "telemetry.istio.io" if kind == "Telemetry" else "security.istio.io"
    return {
        "apiVersion": f"{group}/v1",
        "kind": kind,
        "metadata": {"name": f"edge-{kind.lower()}", "namespace": namespace},
        "spec": spec,
    }


def test_any_label_of_the_gateway_pods_makes_the_selector_ineffective(tmp_path: Path) -> None:
    """The labels of istiod's kube-gateway.yaml template, spec.infrastructure.labels too;
    and not IST0127 as well: the pods exist once istiod deploys them."""
    gw = edge(infrastructure={"labels": {"team": "edge"}})
    found = findings(
        tmp_path,
        gw,
        policy("AuthorizationPolicy", selector={"matchLabels": {"team": "edge"}}),
        policy(
            "Telemetry",
            selector={"matchLabels": {"service.istio.io/canonical-name": "edge-istio"}},
        ),
    )
    assert on(found, "IST0166") == ["AuthorizationPolicy/edge-authorizationpolicy",
                                    "Telemetry/edge-telemetry"]  # fmt: skip
    assert on(found, "IST0127") == []


def test_target_ref_other_namespaces_and_classes_are_not_reported(tmp_path: Path) -> None:
    labels = {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "edge"}}
    target = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    found = findings(
        tmp_path,
        edge(),
        policy("RequestAuthentication", targetRef=target, selector=labels),
        policy("AuthorizationPolicy", namespace="shop", selector=labels),
    )
    assert on(found, "IST0166") == []
    other_class = edge(gatewayClassName="istio-waypoint")
    by_selector = policy("AuthorizationPolicy", selector=labels)
    found = findings(tmp_path / "class", other_class, by_selector)
    assert on(found, "IST0166") == []


# gateway/gateway.go IngressGatewayPortAnalyzer


def gateway(*ports: int, selector: dict[str, str | None] | None = None) -> dict[str, Any]:
    servers = [
        {"port": {"number": n, "name": f"http-{n}", "protocol": "HTTP"}, "hosts": ["*"]}
        for n in ports
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "taskmesh-gateway"},
        "spec": {"selector": selector or {"istio": "ingressgateway"}, "servers": servers},
    }


def test_istios_gateway_listens_on_its_services_ports_and_target_ports(tmp_path: Path) -> None:
    found = findings(tmp_path / "in", patches=[gateway(80, 8080, 443, 8443, 15021, 31400)])
    assert [f.message.split(":")[0] for f in found if f.code == "IST0162"] == [
        "servers[5].port.number 31400"
    ]
    egress = gateway(80, 15021, selector={"istio": "egressgateway"})
    found = findings(tmp_path / "out", patches=[egress])
    assert [f.message.split(":")[0] for f in found if f.code == "IST0162"] == [
        "servers[1].port.number 15021"
    ]


def test_a_gateway_of_the_set_is_reached_through_its_own_services(tmp_path: Path) -> None:
    """TCP ports only (no protocol is TCP); a named targetPort counts as the port, a
    numeric string as its number; Services of another namespace select other pods."""
    labels = {"app": "edge", "version": "v1"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "edge", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "proxy", "image": "istio/proxyv2"}]},
            },
        },
    }
    ports = [
        {"name": "http", "port": 80, "targetPort": "8081"},
        {"name": "http-named", "port": 9000, "targetPort": "web"},
        {"name": "udp", "port": 7000, "protocol": "UDP"},
    ]
    edge = {**service("edge", *ports, selector={"app": "edge"})}
    elsewhere = {**service("edge-other", {"name": "http", "port": 6000}, selector={"app": "edge"})}
    elsewhere["metadata"] = {"name": "edge-other", "namespace": "shop"}
    # a merge patch: null drops the base Gateway's istio=ingressgateway
    gw = gateway(80, 8081, 9000, 7000, 6000, selector={"istio": None, "app": "edge"})
    found = findings(tmp_path, deployment, edge, elsewhere, patches=[gw])
    assert [f.message.split(":")[0] for f in found if f.code == "IST0162"] == [
        "servers[3].port.number 7000",
        "servers[4].port.number 6000",
    ]


def test_any_label_set_of_istios_gateway_pods_selects_it(tmp_path: Path) -> None:
    """`app: istio-ingressgateway`, or both chart labels, pick Istio's gateway as well as
    `istio: ingressgateway` does (its pods carry both: mesh/translate/istio_gateways.py):
    no IST0101, and IST0162 knows its Service's ports; a label its pods lack picks none."""
    by_app = gateway(80, 31400, selector={"istio": None, "app": "istio-ingressgateway"})
    found = findings(tmp_path / "app", patches=[by_app])
    assert on(found, "IST0101") == []
    assert [f.message.split(":")[0] for f in found if f.code == "IST0162"] == [
        "servers[1].port.number 31400"
    ]
    both = gateway(80, selector={"app": "istio-ingressgateway"})
    assert on(findings(tmp_path / "both", patches=[both]), "IST0101") == []
    other = gateway(80, selector={"version": "canary"})
    assert on(findings(tmp_path / "other", patches=[other]), "IST0101") != []


def test_a_gateway_api_gateways_identity_follows_its_service_account_annotation(
    tmp_path: Path,
) -> None:
    """deploymentcontroller.go: the ServiceAccount is `gateway.istio.io/service-account`,
    else `<name>-<class>`; a principal of another name matches no workload (TM104)."""

    def allowing(account: str) -> dict[str, Any]:
        principal = f"cluster.local/ns/default/sa/{account}"
        return policy(
            "AuthorizationPolicy",
            selector={"matchLabels": {"app": "backend"}},
            rules=[{"from": [{"source": {"principals": [principal]}}]}],
        )

    def tm104(gw: dict[str, Any], account: str, where: str) -> list[str]:
        return on(findings(tmp_path / where, gw, allowing(account)), "TM104")

    assert tm104(edge(), "edge-istio", "default") == []
    named = edge()
    named["metadata"]["annotations"] = {"gateway.istio.io/service-account": "edge-sa"}
    assert tm104(named, "edge-sa", "named") == []
    assert tm104(named, "edge-istio", "not-default") == [
        "AuthorizationPolicy/edge-authorizationpolicy"
    ]
