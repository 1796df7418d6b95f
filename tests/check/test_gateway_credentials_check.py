"""`mesh check` finds a Gateway's credential as istioctl's gateway.SecretAnalyzer does
(pkg/config/analysis/analyzers/gateway/secret.go): in the namespace of the gateway's
workload, a Secret whose keys ExtractCertInfo reads, valid now (ValidateCertificate); and
one credential in two Gateways as gateway.CertificateAnalyzer (certificate.go)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mesh.check import check_tree
from mesh.gateway_certs import write_credential
from tests.check.test_analyzer_parity import BASE, deployment
from tests.mesh.support import CREDENTIAL, overlay, pem_files, tls_secret


def https_gateway(
    selector: dict[str, str], namespace: str = "default", name: str = "secure"
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": selector,
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "tls": {"mode": "SIMPLE", "credentialName": "cred"},
                    "hosts": [f"{name}.example.com"],
                }
            ],
        },
    }


def secret(namespace: str, files: dict[str, str]) -> dict[str, Any]:
    """Secret "cred" of no type (Opaque, a generic Secret may hold cert/key too)."""
    doc = tls_secret("cred", files, namespace)
    del doc["type"]
    return doc


def pair(directory: Path = CREDENTIAL, cert: str = "tls.crt", key: str = "tls.key") -> dict:
    """The pair of DIRECTORY under the keys CERT and KEY."""
    files = pem_files(directory)
    return {cert: files["tls.crt"], key: files["tls.key"]}


def lines(tmp_path: Path, *extra: dict[str, Any]) -> list[str]:
    found = check_tree(overlay(tmp_path / "t", extra=list(extra), base=BASE))
    return [f"{f.code} {f.kind}/{f.name}: {f.message}" for f in found if f.code[:3] == "IST"]


def test_istios_ingress_gateway_reads_istio_system(tmp_path: Path) -> None:
    gw = https_gateway({"istio": "ingressgateway"})
    assert lines(tmp_path / "a", gw, secret("istio-system", pair())) == []
    [missing] = lines(tmp_path / "b", gw, secret("default", pair()))
    assert missing.startswith("IST0101 Gateway/secure: spec.servers[0].tls.credentialName")
    assert "Secret/cred is in namespace default" in missing


def test_an_own_gateway_deployment_reads_its_own_namespace(tmp_path: Path) -> None:
    """getGatewayNamespace: the namespace of the pod the selector matches."""
    gw = https_gateway({"app": "edge"})
    edge = deployment("edge", {"app": "edge"}, namespace="edge")
    exposed = {  # the gateway's own Service (IST0162 without it)
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "edge", "namespace": "edge"},
        "spec": {"selector": {"app": "edge"}, "ports": [{"name": "https", "port": 443}]},
    }
    assert lines(tmp_path / "a", gw, edge, exposed, secret("edge", pair())) == []
    [missing] = lines(tmp_path / "b", gw, edge, exposed, secret("istio-system", pair()))
    assert "not found: 'cred' in namespace edge" in missing


def test_a_generic_secret_with_cert_and_key_is_valid(tmp_path: Path) -> None:
    gw = https_gateway({"istio": "ingressgateway"})
    assert lines(tmp_path, gw, secret("istio-system", pair(cert="cert", key="key"))) == []


def test_an_expired_certificate_is_ist0161(tmp_path: Path) -> None:
    old = write_credential(tmp_path / "old", start=dt.datetime(2021, 3, 1, tzinfo=dt.UTC), days=10)
    gw = https_gateway({"istio": "ingressgateway"})
    [invalid] = lines(tmp_path, gw, secret("istio-system", pair(old)))
    assert invalid.startswith("IST0161 Gateway/secure: spec.servers[0].tls.credentialName")
    assert "valid from 2021-03-01 to 2021-03-11, not now" in invalid


def test_one_credential_in_two_gateways_of_the_same_workloads_is_ist0138(tmp_path: Path) -> None:
    """certificate.go: reported on both; a Gateway whose selector does not hold the
    other's labels (another gateway workload) is not."""
    first = https_gateway({"istio": "ingressgateway"})
    second = https_gateway({"istio": "ingressgateway"}, name="second")
    found = lines(tmp_path / "a", first, second, secret("istio-system", pair()))
    assert sorted(f.split(":")[0] for f in found) == [
        "IST0138 Gateway/second",
        "IST0138 Gateway/secure",
    ]
    elsewhere = https_gateway({"istio": "egressgateway"}, name="second")
    found = lines(tmp_path / "b", first, elsewhere, secret("istio-system", pair()))
    assert [f for f in found if f.startswith("IST0138")] == []
