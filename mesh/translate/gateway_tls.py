"""A Gateway server's ``port.protocol`` and ``tls`` -> how its listener takes connections.

Istio's secure-gateway task: a server ``{port: {number: 443, protocol: HTTPS}, tls: {mode:
SIMPLE, credentialName: X}}`` terminates TLS with the certificate of Secret X and routes
the requests as an HTTP server does. What istiod writes, and the local mesh with it:

- one filter chain per HTTPS server, matched on the SNI of its hosts (``server_names``;
  none for ``*``) behind a ``tls_inspector`` listener filter, with its own route table
  ``https.<number>.<port name>.<gateway>.<namespace>`` holding the virtual hosts of that
  server only (pilot/pkg/model/gateway.go ``gatewayRDSRouteName``, ``GetSNIHostsForServer``;
  listener.go ``toFilterChainMatch``);
- a ``DownstreamTlsContext`` (pilot/pkg/networking/core/listener.go
  ``BuildListenerTLSContext``): ALPN ``h2``, ``http/1.1``; ``require_client_certificate``
  for MUTUAL only; for MUTUAL and OPTIONAL_MUTUAL the client CA and ``subjectAltNames``
  (pilot/pkg/security/model/authentication.go ``ApplyCredentialSDSToServerCommonTLSContext``);
  ``minProtocolVersion``/``maxProtocolVersion`` as ``tls_params``;
- ``tls.httpsRedirect`` on a plain HTTP server: its virtual hosts answer 301 to https
  (``require_tls: ALL``, gateway.go ``buildGatewayHTTPRouteConfig``).

One difference: istiod hands the certificate to Envoy over SDS (``kubernetes://X``); the
local Envoy gets it inline in the listener (mesh/translate/credentials.py reads it), so a
changed Secret replaces the listener on the next generation instead of a secret push.
Refused, naming the field: PASSTHROUGH and AUTO_PASSTHROUGH (TLS routes), ISTIO_MUTUAL
(the gateway's mesh certificate), certificates as files mounted into the gateway pod, and
the TLS settings the local mesh does not write (cipher suites, curves, CRLs, pinning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.manifests import Manifests
from mesh.translate.credentials import read_credential
from mesh.translate.fields import NOT_SUPPORTED, Node
from mesh.translate.hostnames import bare_host
from mesh.translate.telemetry import GATEWAY_NAMESPACE

TLS_SOCKET = "envoy.transport_sockets.tls"
DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS_INSPECTOR_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
ALPN_HTTP = ["h2", "http/1.1"]  # pilot/pkg/networking/util ALPNHttp
#: a Gateway API Gateway's certificate, as istiod's conversion names it (namespace/name)
GATEWAY_API_SECRET = "kubernetes-gateway://"
TERMINATING = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
_MODES = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "PASSTHROUGH", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL")
_VERSIONS = {"TLS_AUTO": "TLS_AUTO", "TLSV1_0": "TLSv1_0", "TLSV1_1": "TLSv1_1"}
_VERSIONS |= {"TLSV1_2": "TLSv1_2", "TLSV1_3": "TLSv1_3"}
_FILES = ("serverCertificate", "privateKey", "caCertificates")
_SUPPORTED = ("mode", "credentialName", "httpsRedirect", "subjectAltNames")
_SUPPORTED += ("minProtocolVersion", "maxProtocolVersion")
HTTP_PROTOCOLS = ("HTTP", "HTTPS")


@dataclass(frozen=True)
class ServerTLS:
    """What a server's ``tls`` asks of its listener: a redirect of plain HTTP to https, or
    the DownstreamTlsContext of a terminating server."""

    https_redirect: bool = False
    context: dict[str, Any] | None = None


def server_protocol(port: Node) -> str:
    """``port.protocol`` upper-cased; HTTP and HTTPS run locally (TCP, TLS: no TCP routes)."""
    protocol = port.at("protocol").str().upper() if port.has("protocol") else "HTTP"
    if protocol not in HTTP_PROTOCOLS:
        raise port.at("protocol").error(
            f"{protocol} is not supported by the local mesh (HTTP and HTTPS only)"
        )
    return protocol


def server_tls(manifests: Manifests, server: Node, protocol: str) -> ServerTLS | None:
    """SERVER's ``tls`` (None when it has none), checked as istiod's validation.go
    ``validateServer`` and ``validateTLSOptions`` check it."""
    if not server.has("tls"):
        if protocol == "HTTPS":
            raise server.at("tls").error(
                "is required: an HTTPS server needs TLS settings (mode and credentialName)"
            )
        return None
    tls = server.at("tls")
    for name in _FILES:
        if tls.has(name):
            raise tls.at(name).error(
                "names a file mounted into the gateway pod, which the local mesh does not "
                "have; use credentialName (a Secret in namespace "
                f"{GATEWAY_NAMESPACE}) instead"
            )
    tls.only(*_SUPPORTED)
    mode = tls.at("mode").str().upper() if tls.has("mode") else "PASSTHROUGH"
    if mode not in _MODES:
        raise tls.at("mode").error(f"must be one of {', '.join(_MODES)}")
    redirect = tls.at("httpsRedirect").bool() if tls.has("httpsRedirect") else False
    if protocol == "HTTP":
        # validation.go: only httpsRedirect on a plain-text HTTP server
        extra = [k for k in tls.value if k not in ("httpsRedirect", "mode")]
        if not extra and mode not in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
            extra = ["mode"]
        if extra:
            raise tls.at(extra[0]).error(
                "is not allowed on a plain-text HTTP server (only httpsRedirect is; "
                "terminate TLS with protocol HTTPS)"
            )
        return ServerTLS(https_redirect=redirect)
    if mode not in TERMINATING:
        what = "the gateway's mesh certificate" if mode == "ISTIO_MUTUAL" else "TLS routes"
        raise tls.at("mode").error(f"{mode} {NOT_SUPPORTED} (it needs {what}); use SIMPLE")
    if not tls.has("credentialName"):
        raise tls.at("credentialName").error(
            f"is required: the Secret (in namespace {GATEWAY_NAMESPACE}) with the "
            "server's certificate and key"
        )
    return ServerTLS(redirect, _context(manifests, tls, mode))


def credential_ref(text: str) -> tuple[str, str]:
    """(Secret name, namespace) of a ``credentialName``: ``kubernetes-gateway://ns/name``
    (a Gateway API Gateway's, in the Gateway's namespace) or a plain name, in the ingress
    gateway's namespace."""
    if text.startswith(GATEWAY_API_SECRET):
        namespace, _, name = text[len(GATEWAY_API_SECRET) :].partition("/")
        return name, namespace
    return text, GATEWAY_NAMESPACE


def _context(manifests: Manifests, tls: Node, mode: str) -> dict[str, Any]:
    mutual = mode in ("MUTUAL", "OPTIONAL_MUTUAL")
    node = tls.at("credentialName")
    name, namespace = credential_ref(node.str())
    cred = read_credential(manifests, Node(node.obj, node.path, name), namespace, mutual)
    common: dict[str, Any] = {
        "alpn_protocols": list(ALPN_HTTP),
        "tls_certificates": [
            {
                "certificate_chain": {"inline_string": cred.cert},
                "private_key": {"inline_string": cred.key},
            }
        ],
    }
    sans = [{"exact": s.str()} for s in tls.items("subjectAltNames")]
    if mutual:
        validation: dict[str, Any] = {"trusted_ca": {"inline_string": cred.ca}}
        if sans:
            validation["match_subject_alt_names"] = sans
        common["validation_context"] = validation
    elif sans:
        common["validation_context"] = {"match_subject_alt_names": sans}
    params = {}
    for field, envoy in (
        ("minProtocolVersion", "tls_minimum_protocol_version"),
        ("maxProtocolVersion", "tls_maximum_protocol_version"),
    ):
        if tls.has(field):
            version = tls.at(field).str().upper()
            if version not in _VERSIONS:
                raise tls.at(field).error(f"must be one of {', '.join(_VERSIONS)}")
            if version != "TLS_AUTO":
                params[envoy] = _VERSIONS[version]
    if params:
        common["tls_params"] = params
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": common,
            "require_client_certificate": mode == "MUTUAL",
        },
    }


def tls_inspector() -> dict[str, Any]:
    """The listener filter that reads a connection's SNI before a filter chain is picked."""
    return {"name": TLS_INSPECTOR, "typed_config": {"@type": TLS_INSPECTOR_TYPE}}


def sni_hosts(hosts: list[str]) -> list[str]:
    """``GetSNIHostsForServer`` then ``toFilterChainMatch``: the hosts without their
    namespace, sorted, none at all when one is ``*`` (every SNI, and none)."""
    names = sorted({bare_host(h) for h in hosts})
    return [] if "*" in names else names
