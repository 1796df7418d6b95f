"""HTTPS Gateway servers as istiod builds them (Istio's secure-gateway task).

Sources: pilot/pkg/networking/core/gateway.go (buildGatewayHTTPRouteConfig,
createGatewayHTTPFilterChainOpts), listener.go (BuildListenerTLSContext,
toFilterChainMatch), model/gateway.go (gatewayRDSRouteName, GetSNIHostsForServer,
MergeGateways), security/model/authentication.go
(ApplyCredentialSDSToServerCommonTLSContext), credentials/kube/secrets.go
(ExtractCertInfo, ExtractRoot, GetCaCert), config/validation/validation.go (validateServer).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mesh.errors import TranslationError
from mesh.gateway_certs import write_credential
from mesh.translate.gateway_tls import DOWNSTREAM_TLS, TLS_INSPECTOR
from tests.mesh.support import (
    CREDENTIAL,
    VARIANTS,
    listener,
    local_config,
    overlay,
    pem_files,
    tls_secret,
)

SECURE = VARIANTS / "secure-gateway"
HOST = "taskmesh.example.com"
ROUTE = "https.443.https.taskmesh-gateway.default"


def http_server(hosts: list[str] | None = None) -> dict[str, Any]:
    return {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts or ["*"]}


def https_server(
    hosts: list[str] | None = None, name: str = "https", number: int = 443, **tls: Any
) -> dict[str, Any]:
    return {
        "port": {"number": number, "name": name, "protocol": "HTTPS"},
        "tls": {"mode": "SIMPLE", "credentialName": "taskmesh-credential", **tls},
        "hosts": hosts or [HOST],
    }


def gateway(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "taskmesh-gateway", "namespace": "default"},
        "spec": {"servers": list(servers)},
    }


def secret(
    name: str, files: dict[str, str], namespace: str = "istio-system", encoded: bool = False
) -> dict[str, Any]:
    """A Secret NAME holding FILES, in the ingress gateway's namespace by default."""
    return tls_secret(name, files, namespace, encoded)


def translated(tmp_path: Path, *servers: dict[str, Any], extra: Any = None) -> dict[str, Any]:
    return local_config(overlay(tmp_path / "o", [gateway(*servers)], extra, base=SECURE))


def refused(tmp_path: Path, *servers: dict[str, Any], extra: Any = None) -> str:
    with pytest.raises(TranslationError) as caught:
        translated(tmp_path, *servers, extra=extra)
    assert str(caught.value).split(":")[0].endswith(".yaml")  # names the file
    return str(caught.value)


def tls_context(chain: dict[str, Any]) -> dict[str, Any]:
    socket = chain["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    assert socket["typed_config"]["@type"] == DOWNSTREAM_TLS
    return socket["typed_config"]


def route_table(chain: dict[str, Any]) -> dict[str, Any]:
    return chain["filters"][0]["typed_config"]["route_config"]


# --- the variant ----------------------------------------------------------------------


def test_the_variant_terminates_tls_for_its_host_with_the_secrets_pair() -> None:
    config = local_config(SECURE)
    https = listener(config, "gateway_443")
    assert [f["name"] for f in https["listener_filters"]] == [TLS_INSPECTOR]
    [chain] = https["filter_chains"]
    assert chain["filter_chain_match"] == {"server_names": [HOST]}
    context = tls_context(chain)
    common = context["common_tls_context"]
    assert common["alpn_protocols"] == ["h2", "http/1.1"]
    [pair] = common["tls_certificates"]
    assert pair["certificate_chain"]["inline_string"] == (CREDENTIAL / "tls.crt").read_text()
    assert pair["private_key"]["inline_string"] == (CREDENTIAL / "tls.key").read_text()
    assert context["require_client_certificate"] is False
    assert "validation_context" not in common  # SIMPLE: clients are not asked for a cert
    table = route_table(chain)
    assert table["name"] == ROUTE
    [vhost] = table["virtual_hosts"]
    assert vhost["domains"] == [HOST]
    assert vhost["routes"][-1]["route"]["cluster"].endswith(
        "frontend-service.default.svc.cluster.local"
    )
    # the plain server is what it was: no TLS on port 80
    plain = listener(config, "gateway_80")
    assert "listener_filters" not in plain
    assert "transport_socket" not in plain["filter_chains"][0]
    assert route_table(plain["filter_chains"][0])["name"] == "http.80"


def test_the_demo_certificates_serve_their_host_for_another_year_at_least() -> None:
    """Committed on purpose (as Istio's samples/certs); this fails a year before they
    expire: `python -m mesh.gateway_certs k8s/variants/secure-gateway/credential`."""
    from cryptography import x509

    ca = x509.load_pem_x509_certificate((CREDENTIAL / "ca.crt").read_bytes())
    for name, usage in (("tls.crt", "serverAuth"), ("client.crt", "clientAuth")):
        cert = x509.load_pem_x509_certificate((CREDENTIAL / name).read_bytes())
        cert.verify_directly_issued_by(ca)
        left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert left > dt.timedelta(days=365), f"{name} expires {cert.not_valid_after_utc}"
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert [u._name for u in ext] == [usage]
    server = x509.load_pem_x509_certificate((CREDENTIAL / "tls.crt").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [HOST]


# --- what istiod writes for other server shapes ---------------------------------------


def test_mutual_tls_checks_clients_with_the_secrets_ca(tmp_path: Path) -> None:
    config = translated(
        tmp_path, http_server(), https_server(mode="MUTUAL", subjectAltNames=["client.example.com"])
    )
    context = tls_context(listener(config, "gateway_443")["filter_chains"][0])
    assert context["require_client_certificate"] is True
    validation = context["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["inline_string"] == (CREDENTIAL / "ca.crt").read_text()
    assert validation["match_subject_alt_names"] == [{"exact": "client.example.com"}]


def test_optional_mutual_asks_for_a_certificate_without_requiring_one(tmp_path: Path) -> None:
    config = translated(tmp_path, http_server(), https_server(mode="OPTIONAL_MUTUAL"))
    context = tls_context(listener(config, "gateway_443")["filter_chains"][0])
    assert context["require_client_certificate"] is False
    assert "trusted_ca" in context["common_tls_context"]["validation_context"]


def test_a_cacert_secret_is_preferred_to_the_credentials_own_ca(tmp_path: Path) -> None:
    other = write_credential(tmp_path / "other")
    ca = secret("taskmesh-credential-cacert", {"ca.crt": (other / "ca.crt").read_text()})
    config = translated(tmp_path, http_server(), https_server(mode="MUTUAL"), extra=[ca])
    context = tls_context(listener(config, "gateway_443")["filter_chains"][0])
    trusted = context["common_tls_context"]["validation_context"]["trusted_ca"]
    assert trusted["inline_string"] == (other / "ca.crt").read_text()


def test_protocol_versions_become_tls_params(tmp_path: Path) -> None:
    server = https_server(minProtocolVersion="TLSV1_2", maxProtocolVersion="TLSV1_3")
    config = translated(tmp_path, http_server(), server)
    common = tls_context(listener(config, "gateway_443")["filter_chains"][0])["common_tls_context"]
    assert common["tls_params"] == {
        "tls_minimum_protocol_version": "TLSv1_2",
        "tls_maximum_protocol_version": "TLSv1_3",
    }


def test_each_https_server_has_its_own_chain_and_route_table(tmp_path: Path) -> None:
    other = write_credential(tmp_path / "other", host="shop.example.com")
    cred = secret("shop-credential", pem_files(other))
    config = translated(
        tmp_path,
        http_server(),
        https_server(),
        https_server(["shop.example.com"], name="https-shop", credentialName="shop-credential"),
        extra=[cred],
    )
    chains = listener(config, "gateway_443")["filter_chains"]
    assert [c["filter_chain_match"]["server_names"] for c in chains] == [
        [HOST],
        ["shop.example.com"],
    ]
    assert [route_table(c)["name"] for c in chains] == [
        ROUTE,
        "https.443.https-shop.taskmesh-gateway.default",
    ]
    assert [[v["domains"] for v in route_table(c)["virtual_hosts"]] for c in chains] == [
        [[HOST]],
        [["shop.example.com"]],
    ]
    served = [c["transport_socket"]["typed_config"]["common_tls_context"] for c in chains]
    second = served[1]["tls_certificates"][0]["certificate_chain"]["inline_string"]
    assert second == (other / "tls.crt").read_text()


def test_a_server_for_any_host_matches_every_sni(tmp_path: Path) -> None:
    config = translated(tmp_path, http_server(), https_server(["*"]))
    [chain] = listener(config, "gateway_443")["filter_chains"]
    assert "filter_chain_match" not in chain  # toFilterChainMatch drops a "*" SNI


def test_https_redirect_makes_the_servers_hosts_answer_301(tmp_path: Path) -> None:
    redirect = {**http_server(["*"]), "tls": {"httpsRedirect": True}}
    config = translated(tmp_path, redirect, https_server())
    vhosts = route_table(listener(config, "gateway_80")["filter_chains"][0])["virtual_hosts"]
    assert [(v["domains"], v.get("require_tls")) for v in vhosts] == [(["*"], "ALL")]
    assert vhosts[0]["routes"]  # the routes stay (Envoy redirects before routing)


def test_https_redirect_adds_a_virtual_host_for_a_host_no_route_serves(
    tmp_path: Path,
) -> None:
    """No VirtualService binds old-gateway: its host still gets a virtual host, with no
    routes, that redirects (gateway.go adds one for each host of a redirecting server)."""
    redirect = {**http_server(["old.example.com"]), "tls": {"httpsRedirect": True}}
    plain = {**http_server(["*"]), "port": {"number": 80, "name": "http2", "protocol": "HTTP"}}
    other = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "old-gateway", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [redirect]},
    }
    config = translated(tmp_path, plain, https_server(), extra=[other])
    vhosts = route_table(listener(config, "gateway_80")["filter_chains"][0])["virtual_hosts"]
    by_host = {v["domains"][0]: v for v in vhosts}
    assert set(by_host) == {"old.example.com", "*"}
    assert (by_host["old.example.com"]["require_tls"], by_host["old.example.com"]["routes"]) == (
        "ALL",
        [],
    )
    assert "require_tls" not in by_host["*"] and by_host["*"]["routes"]


# --- refused, naming the field --------------------------------------------------------


def test_refused_server_shapes(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": [HOST]},
            "spec.servers[1].tls is required",
        ),
        (https_server(mode="PASSTHROUGH"), "tls.mode PASSTHROUGH is not supported"),
        (https_server(mode="ISTIO_MUTUAL"), "tls.mode ISTIO_MUTUAL is not supported"),
        (https_server(mode="SOMETIMES"), "tls.mode must be one of"),
        (https_server(credentialName=None), "tls.credentialName is required"),
        (
            https_server(serverCertificate="/etc/certs/tls.crt"),
            "tls.serverCertificate names a file",
        ),
        (
            https_server(cipherSuites=["ECDHE-ECDSA-AES128-GCM-SHA256"]),
            "tls.cipherSuites is not supported",
        ),
        (https_server(minProtocolVersion="TLSV9"), "tls.minProtocolVersion must be one of"),
        ({**https_server(), "port": {"number": 443, "protocol": "HTTPS"}}, "port.name is required"),
        (
            {**https_server(), "port": {"number": 443, "name": "http", "protocol": "HTTPS"}},
            "port names in servers must be unique",
        ),
        (
            {**https_server(), "port": {"number": 443, "name": "tcp", "protocol": "TCP"}},
            "TCP is not supported by the local mesh",
        ),
        (https_server(["*"], number=80), "cannot share port 80"),
        (
            https_server(["*"], credentialName="nowhere"),
            "names no Secret 'nowhere' in namespace istio-system",
        ),
    ]
    for i, (server, expected) in enumerate(cases):
        if server.get("tls", {}).get("credentialName", "") is None:
            del server["tls"]["credentialName"]
        assert expected in refused(tmp_path / str(i), http_server(), server), expected


def test_tls_on_a_plain_http_server_is_only_https_redirect(tmp_path: Path) -> None:
    server = {**http_server(), "tls": {"mode": "SIMPLE", "credentialName": "taskmesh-credential"}}
    message = refused(tmp_path, server, https_server())
    assert (
        "spec.servers[0].tls.credentialName is not allowed on a plain-text HTTP server" in message
    )


def test_two_https_servers_of_one_port_may_not_share_a_host(tmp_path: Path) -> None:
    message = refused(tmp_path, http_server(), https_server(), https_server(name="again"))
    assert f"spec.servers[2].hosts '{HOST}' is already a host of an HTTPS server" in message


def test_a_credential_outside_the_gateways_namespace_is_not_found_and_says_where_it_is(
    tmp_path: Path,
) -> None:
    elsewhere = secret("mine", pem_files(CREDENTIAL), namespace="default")
    message = refused(
        tmp_path, http_server(), https_server(credentialName="mine"), extra=[elsewhere]
    )
    assert "names no Secret 'mine' in namespace istio-system" in message
    assert (
        "Secret/mine is in namespace default, but the gateway reads its credentials from "
        "its own namespace, istio-system" in message
    )


def test_refused_credentials(tmp_path: Path) -> None:
    expired = write_credential(
        tmp_path / "expired", start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=30
    )
    other = write_credential(tmp_path / "other")
    good = pem_files(CREDENTIAL)
    cases = [
        ({"ca.crt": good["tls.crt"]}, "has no certificate: it needs keys tls.crt and tls.key"),
        (pem_files(expired), "is valid from 2020-01-01 to 2020-01-31, not now"),
        (
            {**good, "tls.key": (other / "tls.key").read_text()},
            "tls.key is not the key of the certificate",
        ),
        ({**good, "tls.crt": "not a certificate"}, "tls.crt is not a PEM certificate"),
        ({**good, "tls.key": "not a key"}, "tls.key is not an unencrypted PEM private key"),
    ]
    for i, (files, expected) in enumerate(cases):
        cred = secret("broken", files)
        message = refused(
            tmp_path / str(i), http_server(), https_server(credentialName="broken"), extra=[cred]
        )
        assert "spec.servers[1].tls.credentialName" in message and expected in message, message
    # a Secret whose data is not a mapping (hypothesis found it: it was a traceback)
    cred = {**secret("broken", good), "stringData": 7}
    message = refused(
        tmp_path / "shape", http_server(), https_server(credentialName="broken"), extra=[cred]
    )
    assert "stringData is not a mapping of keys to values" in message, message


def test_mutual_tls_without_a_ca_is_refused(tmp_path: Path) -> None:
    cred = secret("no-ca", pem_files(CREDENTIAL))
    server = https_server(mode="MUTUAL", credentialName="no-ca")
    message = refused(tmp_path, http_server(), server, extra=[cred])
    assert "a MUTUAL server needs the CA that signs its clients" in message


def test_a_base64_secret_is_read_as_the_api_server_reads_it(tmp_path: Path) -> None:
    """data (base64, as kubectl create secret tls writes it) works as stringData does."""
    cred = secret("encoded", pem_files(CREDENTIAL), encoded=True)
    config = translated(
        tmp_path, http_server(), https_server(credentialName="encoded"), extra=[cred]
    )
    common = tls_context(listener(config, "gateway_443")["filter_chains"][0])["common_tls_context"]
    assert common["tls_certificates"][0]["private_key"]["inline_string"] == good_key()


def good_key() -> str:
    return (CREDENTIAL / "tls.key").read_text()
